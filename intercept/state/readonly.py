"""What `reserve` would answer, found by reading counters only: shadow evaluation takes nothing.

Nothing here is atomic with other proxies' reservations, which is fine for its one use: a shadow
verdict is a record, never a decision, so a race can only make a record slightly off.
"""

from __future__ import annotations

from collections.abc import Sequence

from intercept.state.base import CounterCheck, CounterStore, Refusal, first_refusal


async def projections(store: CounterStore, checks: Sequence[CounterCheck], now: float) -> list[float]:
    """Each check's projected value as `reserve` computes it (earlier increments seen by later
    checks), from the counters' current values; the store is only read. Raises StateError."""
    current: dict[tuple[str, str, int], float] = {}
    added: dict[tuple[str, str, int], float] = {}
    out: list[float] = []
    for check in checks:
        cid = (check.key, check.kind, check.window_seconds)
        if cid not in current:
            current[cid] = await store.value(check.key, check.kind, check.window_seconds, now)
        added[cid] = added.get(cid, 0.0) + check.increment
        out.append(current[cid] + added[cid])
    return out


async def would_refuse(
    store: CounterStore,
    checks: Sequence[CounterCheck],
    now: float,
    before: Sequence[CounterCheck] = (),
) -> Refusal | None:
    """The refusal `reserve([*before, *checks])` would give on one of `checks`, or None if they all
    admit; `before` only adds its increments. `Refusal.index` counts within `checks`."""
    values = await projections(store, [*before, *checks], now)
    return first_refusal(checks, values[len(before) :])
