"""An event loop that keeps polling its descriptors for a moment before it sleeps.

Over stdio most of the proxy's added latency is not its own work but the kernel waking it:
every message makes the proxy sleep in `epoll_wait` and be woken by the peer's write, twice
per call. A call's answer usually follows its request within a fraction of a millisecond, so
after handling I/O the loop asks epoll again without blocking, for up to `spin_seconds`, and
only then sleeps. The extra CPU is bounded by `spin_seconds` per burst of messages, and it
costs nothing while the proxy is idle: the loop spins only right after a poll that found work.

Spinning only pays while no other task wants the CPU. A task that sleeps is favoured by the
scheduler when it wakes; a task that spins loses that, and on a busy machine it ends up waiting
on the run queue behind other work, which costs far more than the wake-up it saved. So the
selector watches its own run-queue wait (`/proc/thread-self/schedstat`, one `pread`): when the
recent spins show the thread waiting for a CPU, it stops spinning for a while and sleeps like
an ordinary loop, then tries again. Where the kernel does not publish that figure it never
spins. Polling is off by default (`intercept run --busy-poll-us 100` turns it on): measured on
this project's shared 2-core machine it cut the added latency by three quarters while the machine
was otherwise idle, and made it worse whenever anything else ran. BENCHMARKS.md (issue 4).
"""

from __future__ import annotations

import asyncio
import os
import selectors
import time
from collections.abc import Callable

DEFAULT_BUSY_POLL_SECONDS = 0.0
"""Off unless asked for: on a machine shared with other work, spinning costs more than it saves."""
SCHEDSTAT = "/proc/thread-self/schedstat"
CONTENDED_WAIT_NS = 20_000
"""Run-queue wait between two spins above which the CPU counts as contended."""
SPINS_PER_VERDICT = 32
CONTENDED_SPINS_TO_BACK_OFF = 4
BACK_OFF_SECONDS = 1.0


def make_wait_probe(path: str = SCHEDSTAT) -> Callable[[], int | None]:
    """The calling thread's total run-queue wait in nanoseconds so far; None where unknown."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return lambda: None

    def waited_ns() -> int | None:
        try:
            return int(os.pread(fd, 128, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return None

    return waited_ns


class PollingSelector(selectors.EpollSelector):
    """An epoll selector that polls without blocking for up to `spin_seconds` after activity.

    Create it on the thread that runs the loop: the wait probe reads that thread's statistics.
    """

    def __init__(self, spin_seconds: float, wait_probe: Callable[[], int | None] | None = None) -> None:
        super().__init__()
        self._spin = spin_seconds
        self._waited = wait_probe or make_wait_probe()
        self._active = False  # the previous poll found work
        self._last_wait: int | None = None
        self._spins = 0
        self._contended = 0
        self._calm_at = 0.0  # no spinning before this perf_counter time

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        return super().select(timeout)

    def _may_spin(self, now: float) -> bool:
        if now < self._calm_at:
            return False
        waited = self._waited()
        if waited is None:
            return False
        last, self._last_wait = self._last_wait, waited
        if last is None:
            return True
        self._spins += 1
        self._contended += waited - last > CONTENDED_WAIT_NS
        if self._contended >= CONTENDED_SPINS_TO_BACK_OFF:
            self._calm_at = now + BACK_OFF_SECONDS
            self._last_wait, self._spins, self._contended = None, 0, 0
            return False
        if self._spins >= SPINS_PER_VERDICT:
            self._spins = self._contended = 0
        return True

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self._active and self._spin > 0 and (timeout is None or timeout > 0):
            started = time.perf_counter()
            if self._may_spin(started):
                deadline = started + (self._spin if timeout is None else min(self._spin, timeout))
                while not (ready := self._poll(0)):
                    now = time.perf_counter()
                    if now >= deadline:
                        if timeout is not None:
                            timeout = max(0.0, timeout - (now - started))
                        break
                else:
                    return ready
        ready = self._poll(timeout)
        self._active = bool(ready)
        return ready


def polling_loop_factory(spin_seconds: float) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A loop factory for `asyncio.Runner`; None (asyncio's default loop) when polling is off."""
    if spin_seconds <= 0 or not hasattr(selectors, "EpollSelector"):
        return None
    return lambda: asyncio.SelectorEventLoop(PollingSelector(spin_seconds))
