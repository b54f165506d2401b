"""In-process counter store (`--state memory`): exact within one proxy, gone on exit.

Everything runs on the event loop without awaiting in the middle, so a reserve is atomic
with respect to every other coroutine in the process.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence

from intercept.state.base import (
    CounterCheck,
    Refusal,
    Reservation,
    WindowKind,
    calendar_bucket,
    first_refusal,
)

CounterId = tuple[str, str, int]


class _Sliding:
    """Admitted entries of one sliding counter, oldest first, and their running total."""

    __slots__ = ("entries", "total")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, float, str]] = deque()
        self.total = 0.0

    def trim(self, cutoff: float) -> None:
        entries = self.entries
        while entries and entries[0][0] <= cutoff:
            self.total -= entries.popleft()[1]
        if not entries:
            self.total = 0.0


class MemoryStore:
    """`CounterStore` held in dictionaries; see `intercept.state.base` for the contract."""

    eager_safe = True
    """Its coroutines never suspend, so the relay may run them outside a task (faster)."""

    display = "memory"

    def __init__(self) -> None:
        self._sliding: dict[CounterId, _Sliding] = {}
        self._calendar: dict[CounterId, tuple[int, float]] = {}
        self._pending: set[str] = set()
        self._tokens = itertools.count(1)

    def _current(self, check: CounterCheck, now: float) -> float:
        cid = (check.key, check.kind, check.window_seconds)
        if check.kind == "sliding":
            sliding = self._sliding.get(cid)
            if sliding is None:
                return 0.0
            sliding.trim(now - check.window_seconds)
            return sliding.total
        bucket, value = self._calendar.get(cid, (-1, 0.0))
        return value if bucket == calendar_bucket(now, check.window_seconds) else 0.0

    async def reserve(self, checks: Sequence[CounterCheck], now: float) -> Reservation | Refusal:
        checks = tuple(checks)
        token = str(next(self._tokens))
        if not checks:
            return Reservation(token, checks, now)
        pending: dict[CounterId, float] = {}
        projections: list[float] = []
        for check in checks:
            cid = (check.key, check.kind, check.window_seconds)
            projections.append(self._current(check, now) + pending.get(cid, 0.0) + check.increment)
            pending[cid] = pending.get(cid, 0.0) + check.increment
        refusal = first_refusal(checks, projections)
        if refusal is not None:
            return refusal
        for check in checks:
            self._apply(check, now, token)
        self._pending.add(token)
        return Reservation(token, checks, now)

    def _apply(self, check: CounterCheck, now: float, token: str) -> None:
        cid = (check.key, check.kind, check.window_seconds)
        if check.kind == "sliding":
            sliding = self._sliding.setdefault(cid, _Sliding())
            sliding.entries.append((now, check.increment, token))
            sliding.total += check.increment
            return
        bucket = calendar_bucket(now, check.window_seconds)
        old_bucket, value = self._calendar.get(cid, (bucket, 0.0))
        self._calendar[cid] = (bucket, (value if old_bucket == bucket else 0.0) + check.increment)

    async def commit(self, reservation: Reservation) -> None:
        self._pending.discard(reservation.token)

    async def rollback(self, reservation: Reservation) -> None:
        if reservation.token not in self._pending:
            return
        self._pending.discard(reservation.token)
        for check in reservation.checks:
            cid = (check.key, check.kind, check.window_seconds)
            if check.kind == "sliding":
                sliding = self._sliding.get(cid)
                if sliding is None:
                    continue
                for entry in sliding.entries:
                    if entry[2] == reservation.token and entry[1] == check.increment:
                        sliding.entries.remove(entry)
                        sliding.total -= check.increment
                        break
                continue
            bucket = calendar_bucket(reservation.at, check.window_seconds)
            current = self._calendar.get(cid)
            if current is not None and current[0] == bucket:
                self._calendar[cid] = (bucket, current[1] - check.increment)

    async def value(self, key: str, kind: WindowKind, window_seconds: int, now: float) -> float:
        return self._current(CounterCheck(key, kind, window_seconds), now)

    async def close(self) -> None:
        return None
