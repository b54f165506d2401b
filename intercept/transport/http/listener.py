"""The Streamable HTTP endpoint (`intercept run --listen HOST:PORT`): checks each request to `/mcp`
and hands it to its session. Framing and sessions only, no policy.

Per request, before anything reaches the router:

* who sent it: Host, Origin and bearer token (`edge`);
* the body must be strict JSON (no duplicate keys, valid UTF-8) within the size limit, and
  the memory it holds until the router takes it counts against the shared budget (`limits`);
* an `Mcp-Method` or `Mcp-Name` header that disagrees with the body is rejected (400,
  HeaderMismatch), so a gateway keyed on headers cannot be steered by a body naming another tool;
* a protocol version, in a header or in `_meta`, must be a revision date.

A POST then goes to its session (`sessions`; a new one at `initialize`, a one-shot one for a
stateless request, see `stateless`), and its answer streams back on that POST (`streams`); a GET
opens or resumes a stream, a DELETE ends the session. The endpoint is a bare ASGI application
(`asgi`), served by uvicorn (`serve`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from intercept.protocol import fastjson, jsonrpc
from intercept.protocol.mcp_headers import (
    HEADER_MISMATCH,
    PROTOCOL_VERSION_META_KEY,
    PROTOCOL_VERSION_RULE,
    SESSION_HEADER,
    envelope_of,
    is_stateless_version,
    mismatch,
    protocol_version,
    valid_protocol_version,
)
from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES
from intercept.transport.http.asgi import (
    Headers,
    Receive,
    Reply,
    Response,
    Scope,
    Send,
    error_reply,
    request_headers,
)
from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.edge import Edge, ListenAddress
from intercept.transport.http.event_log import DEFAULT_MAX_BYTES, DEFAULT_MAX_EVENTS
from intercept.transport.http.limits import (
    CLIENT_GONE,
    DISCONNECT_TASK,
    ByteBudget,
    ClientGone,
    ConnectionGuard,
    ListenerLimits,
    Refused,
    read_body,
)
from intercept.transport.http.sessions import SessionRunner, SessionTable
from intercept.transport.http.stateless import sessionless_reply
from intercept.transport.http.streams import PRIMING_FROM_VERSION, get_stream, json_answer, sse_answer


@dataclass
class ListenerOptions:
    address: ListenAddress
    client_token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    stateless: bool = False
    """Serve 2026-07-28 stateless requests (each gets its own short-lived session)."""
    replay_events: int = DEFAULT_MAX_EVENTS
    replay_bytes: int = DEFAULT_MAX_BYTES
    """Bounds of each session's SSE replay log (`Last-Event-ID`)."""
    limits: ListenerLimits = field(default_factory=ListenerLimits)


def _malformed_version(headers: Headers, message: Any) -> str | None:
    """What is wrong with the protocol version a request names, if anything (never the value)."""
    header = headers.get("mcp-protocol-version")
    if header is not None and not valid_protocol_version(header):
        return f"the MCP-Protocol-Version header must be {PROTOCOL_VERSION_RULE}"
    items = message if isinstance(message, list) else [message]
    if any((v := protocol_version(m)) is not None and not valid_protocol_version(v) for m in items):
        return f'params._meta["{PROTOCOL_VERSION_META_KEY}"] must be {PROTOCOL_VERSION_RULE}'
    return None


def _header_mismatch(headers: Headers, message: Any) -> Reply | None:
    names: tuple[str, ...] = ("mcp-method", "mcp-name", "mcp-protocol-version")
    sent = {k: headers[k] for k in names if k in headers}
    wrong = mismatch(sent, message)
    if wrong is None:
        return None
    return error_reply(400, f"the {wrong} header does not match the request body", HEADER_MISMATCH)


class HttpListener:
    """The `/mcp` endpoint of one `--listen` address."""

    def __init__(self, options: ListenerOptions, runner: SessionRunner) -> None:
        self.options = options
        self.budget = ByteBudget(options.limits.max_buffered_bytes)
        self.guard = ConnectionGuard(options.limits)
        self.table = SessionTable(
            runner, options.limits, self.budget, options.replay_events, options.replay_bytes
        )
        self._edge = Edge(
            options.address, options.client_token, options.allowed_hosts, options.allowed_origins
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def sessions(self) -> dict[str, ListenerChannel]:
        """The live sessions by id."""
        return self.table.by_id

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application: `/mcp` only."""
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        if scope["path"] != "/mcp":
            response: Response = Reply(404, b"Not Found", "text/plain")
        elif scope["method"] not in ("POST", "GET", "DELETE"):
            response = Reply(405, b"Method Not Allowed", "text/plain", {"allow": "POST, GET, DELETE"})
        else:
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            # The guarded protocol cancels the task if the client leaves before its answer, so
            # a request waiting for an answer that may never come does not outlive its client.
            scope[DISCONNECT_TASK] = task = asyncio.current_task(self._loop)
            try:
                found = await self.handle(scope["method"], request_headers(scope), receive)
            except asyncio.CancelledError:
                if not scope.get(CLIENT_GONE) or task is None or task.uncancel() > 0:
                    raise
                return
            finally:
                scope.pop(DISCONNECT_TASK, None)
            if found is None:
                return  # the client went away while sending its body
            response = found
        await response(scope, receive, send)

    async def handle(self, method: str, headers: Headers, receive: Receive) -> Response | None:
        """One request to `/mcp`; None if the client disconnected before its body arrived."""
        refused = self._edge.refuse(headers)
        if refused is not None:
            return refused
        if method == "POST":
            return await self._post(headers, receive)
        session = self.table.get(headers.get(SESSION_HEADER, ""))
        if session is None:
            if SESSION_HEADER not in headers:
                return error_reply(400, "Mcp-Session-Id header is required")
            return error_reply(404, "unknown or expired session")
        session.touch()
        if method == "DELETE":
            await self.table.end(session)
            return Reply(200)
        return get_stream(headers, session)

    async def _post(self, headers: Headers, receive: Receive) -> Response | None:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return error_reply(415, "Content-Type must be application/json")
        try:
            body = await read_body(
                receive, headers.get("content-length"), self.options.max_message_bytes, self.budget
            )
        except ClientGone:
            return None
        except Refused as refused:
            # The rest of the body is discarded as it arrives (closing at once could reset the
            # connection before the client reads this answer), until the body deadline.
            code = jsonrpc.UPSTREAM_ERROR if refused.status == 503 else jsonrpc.INVALID_REQUEST
            return error_reply(refused.status, refused.message, code)
        try:
            message, canonical = jsonrpc.parse_canonical(body)
        except jsonrpc.MessageError as exc:
            return error_reply(400, exc.message, exc.code)
        if not canonical:
            # The router parses what it is given again: hand it the checked message in the
            # compact form its fast parser accepts, not the client's bytes a second time.
            body = fastjson.compact(message) or body
        malformed = _malformed_version(headers, message)
        if malformed is not None:
            return error_reply(400, malformed)
        wrong_header = _header_mismatch(headers, message)
        if wrong_header is not None:
            return wrong_header
        items = message if isinstance(message, list) else [message]
        requests = [
            m
            for m in items
            if isinstance(m, dict) and isinstance(m.get("method"), str) and jsonrpc.valid_id(m.get("id"))
        ]
        sid = headers.get(SESSION_HEADER)
        version = headers.get("mcp-protocol-version") or protocol_version(message)
        stateless = is_stateless_version(version)
        session: ListenerChannel | None = None
        if stateless:
            without_session = sessionless_reply(self.options.stateless, message, requests)
            if without_session is not None:
                return without_session
        elif sid is None:
            if not (isinstance(message, dict) and message.get("method") == "initialize"):
                return error_reply(400, "Mcp-Session-Id header is required (initialize first)")
            full = self.table.refuse_new()
            if full is not None:
                return full
        else:
            session = self.table.get(sid)
            if session is None:
                return error_reply(404, "unknown or expired session")
            session.touch()
            if session.in_flight(requests):
                return error_reply(409, "a request with this id is already in flight in this session")
        # Until the router takes it, the message holds memory (unless the router is waiting for it).
        charge = 0 if session is not None and session.router_waiting() else len(body)
        if charge and not self.budget.take(charge):
            return error_reply(503, self.budget.exhausted(), jsonrpc.UPSTREAM_ERROR)
        if session is None:
            session = self.table.start(stateless, envelope_of(message) if stateless else None)
        sse = "text/event-stream" in headers.get("accept", "")
        exchange = session.submit(body, requests, sse, charge)
        reply_headers = {} if session.one_shot else {SESSION_HEADER: session.session_id}
        if exchange is None:
            return Reply(202, headers=reply_headers)
        if sse:
            prime = exchange.number is not None and (version or "") >= PRIMING_FROM_VERSION
            return await sse_answer(session, exchange, reply_headers, prime)
        return await json_answer(session, exchange, reply_headers)

    async def shutdown(self) -> None:
        await self.table.shutdown()
