"""One stdio child serving every 2026-07-28 stateless request of a listener, requests multiplexed.

A 2026-07-28 request is self-contained (no `initialize`, no session), so one long-lived child
can answer them all, as one process serves every client of a stateless HTTP server; starting a
child per request would cost a process start per call. Each stateless request gets a `Lane`, a
`MessageChannel` with its own router in front (the policy applies per request exactly as on any
other path). Lanes share the child by rewriting what could collide between them:

* request ids become ids of the pool's own (`<random prefix><n>`), restored on the answer;
* `_meta.progressToken` likewise, restored on the progress notifications that carry it;
* `notifications/cancelled` names the rewritten id.

So one lane's answers and progress never reach another lane. A message from the child that
names no lane (a log notification, say) is dropped; a request from the child (a 2026-07-28
server sends none) is answered with an error, since no client can be asked. When the child
exits, every lane with a request in flight ends (its router answers those requests with an
error), and the next request starts a new child.

Framing only, no policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from intercept.protocol.mcp_headers import add_envelope
from intercept.transport.base import FrameTooLarge, MessageChannel

log = logging.getLogger(__name__)


class ChildProcess(MessageChannel, Protocol):
    async def wait(self) -> int: ...


def _dumps(message: Any) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def _key(value: Any) -> str:
    return json.dumps(value)


class SharedChild:
    """The pool of one: starts the child on first use and routes its messages to lanes."""

    def __init__(self, start: Callable[[], Awaitable[ChildProcess]]) -> None:
        self._start = start
        self._child: ChildProcess | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._prefix = f"intercept-pool-{secrets.token_hex(8)}-"
        self._numbers = itertools.count(1)
        self._requests: dict[str, tuple[Lane, Any, str | None]] = {}
        """Wire id key -> (lane, the lane's own id, wire progress-token key or None)."""
        self._tokens: dict[str, tuple[Lane, Any]] = {}
        self._closed = False

    def lane(self, envelope: dict[str, Any] | None = None) -> Lane:
        return Lane(self, envelope)

    async def _ensure(self) -> ChildProcess:
        async with self._lock:
            if self._closed:
                raise ConnectionError("the listener is shutting down")
            if self._child is None:
                child = await self._start()
                self._child = child
                self._reader = asyncio.create_task(self._read(child))
            return self._child

    def _wire_id(self) -> str:
        return f"{self._prefix}{next(self._numbers)}"

    async def _send(self, lane: Lane, message: Any) -> None:
        """Rewrite one message of `lane` for the shared child and write it."""
        child = await self._ensure()
        if isinstance(message, dict) and isinstance(message.get("method"), str):
            message = self._outgoing(lane, message)
            if message is None:
                return
        await child.send(_dumps(message))

    def _outgoing(self, lane: Lane, message: dict[str, Any]) -> dict[str, Any] | None:
        params = message.get("params")
        if "id" in message:
            wire_id = self._wire_id()
            token_key: str | None = None
            meta = params.get("_meta") if isinstance(params, dict) else None
            if isinstance(params, dict) and isinstance(meta, dict) and meta.get("progressToken") is not None:
                wire_token = self._wire_id()
                token_key = _key(wire_token)
                self._tokens[token_key] = (lane, meta["progressToken"])
                params = {**params, "_meta": {**meta, "progressToken": wire_token}}
            self._requests[_key(wire_id)] = (lane, message["id"], token_key)
            lane.in_flight.add(_key(wire_id))
            rewritten = {**message, "id": wire_id}
            if params is not None:
                rewritten["params"] = params
            return rewritten
        if message["method"] == "notifications/cancelled" and isinstance(params, dict):
            wire = next(
                (
                    wire_key
                    for wire_key in lane.in_flight
                    if _key(self._requests[wire_key][1]) == _key(params.get("requestId"))
                ),
                None,
            )
            if wire is None:
                return None  # names no request of this lane in flight
            return {**message, "params": {**params, "requestId": json.loads(wire)}}
        return None  # a 2026-07-28 client sends no other notifications; nothing else is forwarded

    async def _read(self, child: ChildProcess) -> None:
        try:
            while True:
                try:
                    data = await child.receive()
                except FrameTooLarge as exc:
                    log.error("message from the shared MCP server dropped: %s", exc)
                    continue
                if data is None:
                    break
                await self._incoming(child, data)
        finally:
            await self._child_gone(child)

    async def _incoming(self, child: ChildProcess, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            log.warning("the shared MCP server sent a message that is not JSON; dropped")
            return
        if not isinstance(message, dict):
            log.warning("the shared MCP server sent a batch; dropped")
            return
        method = message.get("method")
        if not isinstance(method, str):
            route = self._requests.pop(_key(message.get("id")), None)
            if route is None:
                log.debug("answer for no request in flight; dropped")
                return
            lane, own_id, token_key = route
            lane.in_flight.discard(_key(message.get("id")))
            if token_key is not None:
                self._tokens.pop(token_key, None)
            lane.deliver(_dumps({**message, "id": own_id}))
            return
        if "id" in message:
            refusal = {
                "jsonrpc": "2.0",
                "id": message["id"],
                "error": {"code": -32601, "message": "stateless clients cannot be sent requests"},
            }
            with contextlib.suppress(ConnectionError):
                await child.send(_dumps(refusal))
            return
        params = message.get("params")
        token = params.get("progressToken") if isinstance(params, dict) else None
        target = self._tokens.get(_key(token)) if token is not None else None
        if target is None or not isinstance(params, dict):
            log.debug("a notification from the shared MCP server names no request in flight; dropped")
            return
        lane, own_token = target
        lane.deliver(_dumps({**message, "params": {**params, "progressToken": own_token}}))

    async def _child_gone(self, child: ChildProcess) -> None:
        if self._child is child:
            self._child = None
        orphans = {lane for lane, _, _ in self._requests.values()}
        self._requests.clear()
        self._tokens.clear()
        for lane in orphans:
            lane.end()
        with contextlib.suppress(Exception):
            await child.close()
            status = await child.wait()
            if not self._closed:
                log.warning("the MCP server for stateless requests exited with status %s", status)

    def _forget(self, lane: Lane) -> list[Any]:
        """Drop a lane's routes; the wire ids it still had in flight."""
        wire_ids = []
        for wire_key in lane.in_flight:
            route = self._requests.pop(wire_key, None)
            if route is not None and route[2] is not None:
                self._tokens.pop(route[2], None)
            wire_ids.append(json.loads(wire_key))
        lane.in_flight.clear()
        return wire_ids

    async def _abandon(self, lane: Lane) -> None:
        """The lane's client is gone: the child is told to stop work nobody will read."""
        child = self._child
        for wire_id in self._forget(lane):
            if child is None:
                break
            note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": wire_id}}
            with contextlib.suppress(ConnectionError):
                await child.send(_dumps(note))

    async def close(self) -> None:
        self._closed = True
        reader, child = self._reader, self._child
        if child is not None:
            await child.close()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


class Lane:
    """One stateless request's channel to the shared child; see `MessageChannel`."""

    def __init__(self, pool: SharedChild, envelope: dict[str, Any] | None) -> None:
        self._pool = pool
        self._envelope = envelope
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.in_flight: set[str] = set()
        self._closed = False

    async def receive(self) -> bytes | None:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)
        return item

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionError("the request's channel to the MCP server is closed")
        message = json.loads(data)
        if self._envelope is not None:
            # The proxy's own requests (the schema-learning tools/list) need the client's envelope.
            message = add_envelope(message, self._envelope)
        try:
            await self._pool._send(self, message)
        except (OSError, ConnectionError) as exc:
            log.error("cannot reach the MCP server for stateless requests: %s", exc)
            self.end()

    def deliver(self, data: bytes) -> None:
        if not self._closed:
            self._queue.put_nowait(data)

    def end(self) -> None:
        """The child is gone: `receive` returns None, so the router answers what is pending."""
        self._closed = True
        self._queue.put_nowait(None)

    async def close(self) -> None:
        if not self._closed:
            await self._pool._abandon(self)
            self.end()
