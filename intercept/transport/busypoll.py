"""An event loop that keeps polling its descriptors for a moment before it sleeps.

Over stdio most of the proxy's added latency is not its own work but the kernel waking it:
every message makes the proxy sleep in `epoll_wait` and be woken by the peer's write, twice
per call. A call's answer usually follows its request within a fraction of a millisecond, so
after handling I/O the loop asks epoll again without blocking, for up to `spin_seconds`, and
only then sleeps. The extra CPU is bounded by `spin_seconds` per burst of messages, and it
costs nothing while the proxy is idle: the loop spins only right after a poll that found work.

Spinning only pays when a core would otherwise sit idle. When the machine already has as
many runnable tasks as usable cores (the kernel's instantaneous count in `/proc/loadavg`),
a spinning proxy would take CPU time from the very server it waits for, so it sleeps at once.
`intercept run --busy-poll-us 0` turns polling off. BENCHMARKS.md (issue 4) has the numbers.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import time
from collections.abc import Callable

DEFAULT_BUSY_POLL_SECONDS = 100e-6
LOADAVG = "/proc/loadavg"


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def make_idle_cpu_probe(path: str = LOADAVG) -> Callable[[], bool]:
    """A check that some usable core is idle now: fewer runnable tasks than usable cores.

    The count includes this process, which is running while it asks. Where the kernel does
    not publish the count, the answer is always no, so the loop never spins.
    """
    cpus = _usable_cpus()

    def idle_cpu() -> bool:
        try:
            with open(path, "rb") as stats:
                running = int(stats.read().split()[3].split(b"/")[0])
        except (OSError, ValueError, IndexError):
            return False
        return running <= cpus

    return idle_cpu


class PollingSelector(selectors.EpollSelector):
    """An epoll selector that polls without blocking for up to `spin_seconds` after activity."""

    def __init__(self, spin_seconds: float, idle_cpu: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self._spin = spin_seconds
        self._idle_cpu = idle_cpu or make_idle_cpu_probe()
        self._active = False  # the previous poll found work

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        return super().select(timeout)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self._active and self._spin > 0 and (timeout is None or timeout > 0) and self._idle_cpu():
            started = time.perf_counter()
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
