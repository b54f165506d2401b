"""The counter-store contract every state backend (memory, SQLite, Redis) implements.

A call's counters are checked and incremented in one atomic step (`reserve`), before the
call is forwarded. The proxy then undoes them (`rollback`) only when the server's own result
says the tool failed (`isError: true`), and keeps them (`commit`) otherwise (see
`intercept.proxy`). Two processes sharing a backend therefore share limits exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

WindowKind = Literal["sliding", "calendar"]
CheckOp = Literal["lt", "lte", "gt", "gte", "eq", "neq"]


@dataclass(frozen=True, slots=True)
class CounterCheck:
    """One counter touched by a call.

    The store computes the counter's *projected* value, its current value in the window
    plus `increment`, and admits the check if `op(projected, limit)` holds (or if `op` is
    None). A rate limit of `max` calls is `increment=1, op="lte", limit=max`.

    Checks with the same non-zero `any_of` form a group that admits the call when any one of
    its checks admits (a `deny` rule with several counter conditions denies only when all hold).
    """

    key: str
    kind: WindowKind
    window_seconds: int
    increment: float = 1.0
    op: CheckOp | None = None
    limit: float | None = None
    any_of: int = 0

    def admits(self, projected: float) -> bool:
        if self.op is None or self.limit is None:
            return True
        return compare(self.op, projected, self.limit)


def compare(op: CheckOp, left: float, right: float) -> bool:
    if op == "lt":
        return left < right
    if op == "lte":
        return left <= right
    if op == "gt":
        return left > right
    if op == "gte":
        return left >= right
    if op == "eq":
        return math.isclose(left, right, rel_tol=0.0, abs_tol=1e-9)
    return not math.isclose(left, right, rel_tol=0.0, abs_tol=1e-9)


def calendar_bucket(now: float, window_seconds: int) -> int:
    """Index of the UTC-aligned calendar window (minute, hour, day) that `now` falls in."""
    return int(now // window_seconds)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Handle for increments made by an admitted `reserve`; pass it to commit or rollback."""

    token: str
    checks: tuple[CounterCheck, ...]
    at: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """`reserve` refused: `index` is the first check (in the given order) that did not hold."""

    index: int
    projected: float


def first_refusal(checks: Sequence[CounterCheck], projected: Sequence[float]) -> Refusal | None:
    """The first check, in order, that refuses the call given every check's projected value.

    A check that does not admit refuses unless another check of its `any_of` group admits.
    """
    groups_admitting = {
        check.any_of
        for check, value in zip(checks, projected, strict=True)
        if check.any_of and check.admits(value)
    }
    for index, (check, value) in enumerate(zip(checks, projected, strict=True)):
        if not check.admits(value) and check.any_of not in groups_admitting:
            return Refusal(index, value)
    return None


class StateError(Exception):
    """The store could not answer (database locked, Redis down, ...). The proxy fails closed on it."""


class CounterStore(Protocol):
    """Backends: `memory`, `sqlite` (default, durable, multi-process), `redis` (shared)."""

    eager_safe: bool
    """True if every method is safe to start outside a task: before its first suspension it needs
    no current task (it may suspend only on a plain future, as SQLite does when it hands a locked
    transaction to its worker thread). The relay may then start the router's handlers outside a
    task (eager dispatch, the stdio fast path). A store that awaits network I/O through asyncio
    streams must say False. Every store sets it on its class."""

    display: str
    """The store as the proxy names it in logs and status output (no credentials)."""

    async def reserve(self, checks: Sequence[CounterCheck], now: float) -> Reservation | Refusal:
        """Atomically: if every check admits its projected value, apply every increment.

        A counter is identified by `(key, kind, window_seconds)`. Checks are evaluated in
        order as if each increment were applied before the next check, so a counter that
        appears twice in one call sees the earlier increment (the engine uses this to test
        several conditions against one counter). The call is refused at `first_refusal`.
        Sliding counts include entries with `at > now - window_seconds`; calendar counts use
        `calendar_bucket(now, window)`. An empty `checks` is always admitted. Raises
        StateError if the store cannot answer.
        """
        ...

    async def commit(self, reservation: Reservation) -> None:
        """Keep the increments of an admitted call (idempotent)."""
        ...

    async def rollback(self, reservation: Reservation) -> None:
        """Undo the increments of an admitted call (idempotent; a no-op after commit)."""
        ...

    async def value(self, key: str, kind: WindowKind, window_seconds: int, now: float) -> float:
        """Current value of a counter in the window containing `now` (for status and tests)."""
        ...

    async def close(self) -> None: ...
