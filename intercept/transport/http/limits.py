"""What the Streamable HTTP listener lets clients hold: connections, time, buffered bytes.

A client that connects and sends nothing, trickles its request one byte at a time, or starts a
large body and never finishes it costs the listener a connection and memory for as long as it
likes, unless something ends it. uvicorn's httptools protocol has no deadline for a request's
headers or body, so `GuardedHttpToolsProtocol` adds them, and `ByteBudget` bounds the request
bytes held across all connections:

* connections: at most `max_connections` at once. When all are taken, a new connection
  displaces the one that has waited longest for its request headers (a well-behaved client
  sends them at once, so that is a slow or idle one); if none is waiting for headers, the new
  connection gets 503 and is closed;
* request line and headers: within `header_timeout` seconds of the connection opening (or of
  the first byte of a later request on a kept-alive connection), and at most `MAX_HEADER_BYTES`;
  else 408 or 431 and the connection closes;
* request body: within `body_timeout` seconds after its headers, else 408 and the connection
  closes (also when the listener already answered without reading it);
* request bytes held (bodies being received, and messages waiting for a session's router):
  the first `UNCHARGED_BODY_BYTES` of each body come with its connection, the rest draw on one
  shared budget; a request it cannot cover gets 503 and its bytes are freed at once.

Sessions (their number and idle expiry) are bounded by `HttpListener`, with `ListenerLimits`.
"""

from __future__ import annotations

import asyncio
import http
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES, FrameTooLarge
from intercept.transport.http.coalesced import CoalescingHttpToolsProtocol

log = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_MAX_SESSIONS = 32
DEFAULT_SESSION_IDLE_TIMEOUT = 1800.0
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_MAX_BUFFERED_BYTES = 64 * MIB
MAX_HEADER_BYTES = 32 * 1024
"""Request line and headers of one request; a bearer token of a few KiB fits many times over."""
UNCHARGED_BODY_BYTES = 64 * 1024
"""Of each body, what its connection may hold without the shared budget (uvicorn's own read
buffer is as large): bounded by `max_connections`, and a small request is never refused for want
of budget while large ones hold it."""
DISCONNECT_TASK = "intercept.disconnect_task"
"""Scope key: the task to cancel if the client disconnects before the response starts."""
CLIENT_GONE = "intercept.client_gone"
"""Scope key set when that cancellation happened."""


def default_buffered_bytes(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> int:
    """The budget when none is given: 64 MiB, or four messages of the largest size if more."""
    return max(DEFAULT_MAX_BUFFERED_BYTES, 4 * max_message_bytes)


@dataclass(frozen=True)
class ListenerLimits:
    """The listener's resource limits (`intercept run --max-sessions ...`)."""

    max_sessions: int = DEFAULT_MAX_SESSIONS
    session_idle_timeout: float = DEFAULT_SESSION_IDLE_TIMEOUT
    """Seconds a session may go without a request in progress before it ends."""
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES


class ByteBudget:
    """Request bytes the listener holds, across all connections and sessions."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size

    def exhausted(self) -> str:
        return (
            f"the proxy holds as many request bytes as it may (--max-buffered-bytes {self.limit}); "
            "try again shortly"
        )


class Refused(Exception):
    """A request refused while its body arrived: the status and message to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


async def read_body(receive: Receive, declared: str | None, max_bytes: int, budget: ByteBudget) -> bytes:
    """The request body: Refused (413 over `max_bytes`, 503 over the budget) or ClientGone.

    A declared length over the limit is refused before a byte is read. What the body holds
    beyond `UNCHARGED_BODY_BYTES` is charged to `budget` as it arrives and given back on return.
    """
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise Refused(413, str(FrameTooLarge(int(declared), max_bytes)))
    chunks: list[bytes] = []
    size = charged = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise Refused(413, str(FrameTooLarge(size, max_bytes)))
            if size > UNCHARGED_BODY_BYTES:
                wanted = size - UNCHARGED_BODY_BYTES
                if not budget.take(wanted - charged):
                    raise Refused(503, budget.exhausted())
                charged = wanted
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        budget.give(charged)


def too_many_sessions(limit: int) -> str:
    return (
        f"too many sessions: this proxy serves at most {limit} at once (--max-sessions); "
        "end unused sessions with DELETE, or raise --max-sessions"
    )


_IDLE, _HEADERS, _BODY, _CLOSED = range(4)


class ConnectionGuard:
    """One listener's connections: how many are open, and which wait for headers or a body.

    Deadlines are checked by one timer for all connections, a few times per timeout, so a
    request costs two dictionary updates rather than timers of its own. Connections wait in
    insertion order, which is deadline order (every wait of a kind has the same length).
    """

    def __init__(self, limits: ListenerLimits) -> None:
        self.limits = limits
        self.open: set[GuardedHttpToolsProtocol] = set()
        self.headers: dict[GuardedHttpToolsProtocol, float] = {}
        self.bodies: dict[GuardedHttpToolsProtocol, float] = {}
        self._tick = min(max(min(limits.header_timeout, limits.body_timeout) / 4, 0.05), 1.0)
        self._timer: asyncio.TimerHandle | None = None

    def admit(self, connection: GuardedHttpToolsProtocol) -> bool:
        """Count a new connection in, displacing the longest wait for headers if all are taken."""
        if len(self.open) >= self.limits.max_connections:
            waiting = next(iter(self.headers), None)
            if waiting is None:
                return False
            waiting.end(503, "the connection waited too long for its request")
        self.open.add(connection)
        if self._timer is None:
            self._timer = connection.loop.call_later(self._tick, self._check, connection.loop)
        return True

    def await_headers(self, connection: GuardedHttpToolsProtocol) -> None:
        self.bodies.pop(connection, None)
        self.headers.pop(connection, None)
        self.headers[connection] = connection.loop.time() + self.limits.header_timeout

    def await_body(self, connection: GuardedHttpToolsProtocol) -> None:
        self.headers.pop(connection, None)
        self.bodies[connection] = connection.loop.time() + self.limits.body_timeout

    def settle(self, connection: GuardedHttpToolsProtocol) -> None:
        self.headers.pop(connection, None)
        self.bodies.pop(connection, None)

    def forget(self, connection: GuardedHttpToolsProtocol) -> None:
        self.settle(connection)
        self.open.discard(connection)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for waiting, what in ((self.headers, "headers"), (self.bodies, "body")):
            while waiting:
                connection, deadline = next(iter(waiting.items()))
                if deadline > now:
                    break
                connection.end(408, f"the request {what} did not arrive in time")
        self._timer = loop.call_later(self._tick, self._check, loop) if self.open else None


class GuardedHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """uvicorn's httptools protocol (coalesced writes) under a `ConnectionGuard`; see the module.

    Use `guarded_protocol(guard)`, which binds the guard.
    """

    guard: ClassVar[ConnectionGuard]
    _phase = _IDLE
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            log.debug("connection refused: %d connections open", len(self.guard.open))
            self.end(503, "too many connections; try again shortly")
            return
        self._await_headers()

    def _await_headers(self) -> None:
        self._phase = _HEADERS
        self._header_bytes = 0
        self.guard.await_headers(self)

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase == _CLOSED:
            return
        if phase == _IDLE and (self.cycle is None or self.cycle.response_complete):
            self._await_headers()  # a kept-alive connection's next request (or noise) begins
        super().data_received(data)
        if self._phase == _HEADERS:
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self.end(431, f"request line and headers exceed {MAX_HEADER_BYTES} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase == _IDLE:
            self._await_headers()  # a request pipelined behind one still being answered

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self.guard.await_body(self)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        self.guard.settle(self)
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._phase = _CLOSED
        self.guard.forget(self)
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None and not cycle.response_complete:
            task = cycle.scope.pop(DISCONNECT_TASK, None)  # type: ignore[misc]
            if task is not None:
                cycle.scope[CLIENT_GONE] = True  # type: ignore[literal-required]
                task.cancel()

    def end(self, status: int, reason: str) -> None:
        """Close the connection, first answering `status` unless a response has started."""
        phase, self._phase = self._phase, _CLOSED
        self.guard.forget(self)
        if phase == _CLOSED or self.transport.is_closing():
            return
        cycle = self.cycle
        answered = cycle is not None and cycle.response_started and not cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's response, if any, is not sent
            cycle.message_event.set()
        elif phase == _BODY:
            answered = True  # the request was answered before its body arrived
        if not answered:
            body = reason.encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s"
                % (status, http.HTTPStatus(status).phrase.encode(), len(body), body)
            )
        self.transport.close()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedHttpToolsProtocol]:
    """A `uvicorn.Config(http=...)` class whose connections `guard` bounds."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"guard": guard})
