"""The listener's session registry: ids to channels, the session cap, idle expiry, and each session's runner.

A session is a `ListenerChannel` plus the task that runs it (the caller's `SessionRunner`:
connect the channel to a new upstream and relay). A session counts against `--max-sessions`
until its runner, and so its server process, is gone, not merely until it leaves the table.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from intercept.protocol import jsonrpc
from intercept.transport.http.asgi import Reply, error_reply
from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.event_log import EventLog
from intercept.transport.http.limits import ByteBudget, ListenerLimits, too_many_sessions

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 3.0

SessionRunner = Callable[[ListenerChannel], Awaitable[None]]
"""Runs one session: connect the channel to a new upstream and relay until either side ends."""


class SessionTable:
    """The live sessions of one listener, by session id (stateless one-shot sessions have no entry)."""

    def __init__(
        self,
        runner: SessionRunner,
        limits: ListenerLimits,
        budget: ByteBudget,
        replay_events: int,
        replay_bytes: int,
    ) -> None:
        self._runner = runner
        self._limits = limits
        self._budget = budget
        self._replay = (replay_events, replay_bytes)
        self.by_id: dict[str, ListenerChannel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._live = 0
        """Sessions started and not yet over: ended ones count until their runner (and its
        server process) is gone, so `max_sessions` bounds processes, not table entries."""
        self._full_reported = False
        self._expiry: asyncio.Task[None] | None = None

    @property
    def runners(self) -> int:
        """Session runners still going (an ended session's runner may take a moment to stop)."""
        return len(self._tasks)

    def get(self, session_id: str) -> ListenerChannel | None:
        return self.by_id.get(session_id)

    def refuse_new(self) -> Reply | None:
        """503 if a new session would exceed `--max-sessions` (logged once per full spell)."""
        limit = self._limits.max_sessions
        if self._live < limit:
            return None
        if not self._full_reported:
            self._full_reported = True
            log.warning("refusing new sessions: %d are open (--max-sessions)", limit)
        return error_reply(503, too_many_sessions(limit), jsonrpc.UPSTREAM_ERROR)

    def start(self, one_shot: bool = False, envelope: dict[str, Any] | None = None) -> ListenerChannel:
        """A new session, its runner started; a one-shot (stateless) one is not entered in the table."""
        session = ListenerChannel(
            secrets.token_urlsafe(32),
            one_shot,
            None if one_shot else EventLog(*self._replay),
            envelope,
            self._budget,
        )
        if not one_shot:
            self.by_id[session.session_id] = session
            self._live += 1
            if self._expiry is None:
                self._expiry = asyncio.create_task(self._expire_idle_sessions())
        task = asyncio.create_task(self._run(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return session

    async def _run(self, session: ListenerChannel) -> None:
        try:
            await self._runner(session)
        except Exception as exc:
            # The type only: an exception's text may hold message content; the traceback is
            # there for whoever asks for debug logs.
            log.error("session %s failed (%s)", session.session_id[:8], type(exc).__name__)
            log.debug("session %s failed", session.session_id[:8], exc_info=True)
        finally:
            self.by_id.pop(session.session_id, None)
            await session.close()
            if not session.one_shot:
                self._live -= 1
                self._full_reported = False

    async def _expire_idle_sessions(self) -> None:
        """End sessions no client has used for `session_idle_timeout` (checked a few times per
        timeout); a client still reading one of a session's streams keeps it."""
        idle = self._limits.session_idle_timeout
        while True:
            await asyncio.sleep(min(max(idle / 4, 0.05), 30.0))
            cutoff = time.monotonic() - idle
            for session in [s for s in self.by_id.values() if s.last_active <= cutoff and not s.busy()]:
                log.info("session %s ended after %g s idle", session.session_id[:8], idle)
                await self.end(session)

    async def end(self, session: ListenerChannel) -> None:
        """The client is done with the session (DELETE, expiry, shutdown); its runner winds it down."""
        self.by_id.pop(session.session_id, None)
        await session.close()

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
        for session in list(self.by_id.values()):
            await self.end(session)
        if self._tasks:
            # Ended sessions close their upstreams (a DELETE, a child's exit) given a moment.
            await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_GRACE_SECONDS)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
