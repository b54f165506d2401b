"""A queue of messages between tasks of one event loop, cheaper than `asyncio.Queue`.

The HTTP transports pass every message through a few queues per call. `asyncio.Queue` looks up
the running loop on each wait, and on Python 3.11 that lookup makes a `getpid` system call;
with its unused bookkeeping (task counts, an Event, size limits) it cost several microseconds a
message (BENCHMARKS.md, "Streamable HTTP and Redis"). This one remembers its loop and does only
what the transports use: unbounded `put_nowait`, `get`, `get_nowait`, `empty` and `waiting`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Unbounded FIFO; `get` waits for an item. Every waiting reader is woken on each put and
    looks again, so a cancelled reader never swallows an item."""

    __slots__ = ("_items", "_loop", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._items: deque[T] = deque()
        self._waiters: list[asyncio.Future[None]] = []
        self._loop = loop

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> T:
        while not self._items:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        return self._items.popleft()

    def waiting(self) -> bool:
        """True while a reader is blocked in `get` (it takes the next item on its next turn)."""
        return bool(self._waiters)
