"""Streamable HTTP listener (`intercept run --listen HOST:PORT`): serves MCP clients at `/mcp`.

Framing and sessions only, no policy. Every client session gets its own `ListenerChannel`, a
`MessageChannel` the router reads and writes exactly as it would a stdio client; the caller's
`SessionRunner` then connects it to a fresh upstream (a new stdio child, or a new upstream HTTP
session), so sessions share nothing and one client's messages never reach another's stream.

Per request, before anything reaches the router:

* `Host` must name the listening address (or a loopback alias, or `--allowed-host`), and an
  `Origin`, when sent, must be a loopback or `--allowed-origin` origin: DNS rebinding defence;
* with `--client-token`, `Authorization: Bearer <token>` is required;
* the body must be strict JSON (no duplicate keys, valid UTF-8) within the size limit;
* an `Mcp-Method` or `Mcp-Name` header that disagrees with the body is rejected (400,
  HeaderMismatch), so a gateway keyed on headers cannot be steered by a body naming another tool.

Responses to a POST's requests stream back on that POST (SSE, or one JSON body when the client
does not accept SSE). Server-initiated messages go to the POST whose request carries their
progress token, else to the session's GET stream, else to the newest open POST, else wait
(bounded) for a GET stream.

The endpoint is a bare ASGI application served by uvicorn: the usual exchange (one POST, one
answer) builds no framework request or response objects; only the long-lived streams use
Starlette's `StreamingResponse`, for its handling of clients that disconnect mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import itertools
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from starlette.responses import StreamingResponse

from intercept.protocol import fastjson, jsonrpc
from intercept.protocol.fastjson import id_key
from intercept.protocol.mcp_headers import (
    HEADER_MISMATCH,
    PROTOCOL_VERSION_META_KEY,
    PROTOCOL_VERSION_RULE,
    envelope_of,
    is_stateless_version,
    mismatch,
    protocol_version,
    valid_protocol_version,
)
from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES
from intercept.transport.http.event_log import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_EVENTS,
    EventLog,
    EventsLost,
    UnknownStream,
    event_id,
    parse_event_id,
)
from intercept.transport.http.limits import (
    CLIENT_GONE,
    DISCONNECT_TASK,
    ByteBudget,
    ClientGone,
    ConnectionGuard,
    ListenerLimits,
    Refused,
    guarded_protocol,
    read_body,
    too_many_sessions,
)
from intercept.transport.http.mailbox import Mailbox
from intercept.transport.http.sse import encode_event

log = logging.getLogger(__name__)

SESSION_HEADER = "mcp-session-id"
SHUTDOWN_GRACE_SECONDS = 3.0
BACKLOG_LIMIT = 1000
"""Server-initiated messages kept for a GET stream that is not open yet; older ones are dropped."""

SessionRunner = Callable[["ListenerChannel"], Awaitable[None]]
"""Runs one session: connect the channel to a new upstream and relay until either side ends."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = dict[str, str]
"""Request headers by lower-case name; the first of repeated fields wins."""


@dataclass(slots=True)
class Reply:
    """A complete HTTP response (status, body, headers), sent in one go."""

    status: int
    body: bytes = b""
    media_type: str | None = None
    headers: Headers = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(b"content-length", str(len(self.body)).encode())]
        if self.media_type is not None:
            raw.append((b"content-type", self.media_type.encode()))
        raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items())
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


Response = Reply | StreamingResponse


def _headers(scope: Scope) -> Headers:
    headers: Headers = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str) -> ListenAddress:
    """`HOST:PORT`, `[v6]:PORT` or `:PORT` (loopback); ValueError with a fix otherwise."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"--listen {value!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
    host = host.strip("[]") or "127.0.0.1"
    return ListenAddress(host, int(port_text))


_stream_numbers = itertools.count(1)
"""Stream numbers are unique in the process, so an event id names one stream of one session."""

PRIME_AFTER_SECONDS = 0.25
"""A POST answered later than this gets a priming event (an id, no data) first, so a client whose
connection breaks before the first message can still resume (2025-11-25 and later)."""
_PRIMING_FROM_VERSION = "2025-11-25"
_PRIME = b""
"""Queue marker: the priming timer fired (real events are never empty)."""


@dataclass(eq=False, slots=True)
class _Stream:
    """Where one response's messages go: a POST's SSE or JSON answer, or the session's GET stream.

    `number` is None for streams without event ids (JSON answers, stateless requests). While no
    client reads the stream (`attached` is False) its events still go to the session's replay
    log, so a client can resume it.
    """

    number: int | None
    sse: bool
    queue: Mailbox[bytes | None] = field(default_factory=Mailbox)
    seq: int = 0
    attached: bool = True


@dataclass(eq=False, slots=True)
class _Exchange(_Stream):
    """One POST waiting for the responses to its requests."""

    pending: set[str] = field(default_factory=set)
    progress_tokens: set[str] = field(default_factory=set)
    status: int | None = None
    """An HTTP error status the upstream answered this request with (passed on to the client)."""
    plain: bool = False
    """The queue holds one raw JSON body to send with `status`, not SSE events."""
    keys: tuple[str, ...] = ()
    """The ids of all its requests, answered or not (what `_by_id` may still map to it)."""
    forgotten: bool = False


class ListenerChannel:
    """The router's view of one client session; see `intercept.transport.base.MessageChannel`."""

    def __init__(
        self,
        session_id: str,
        one_shot: bool = False,
        log: EventLog | None = None,
        envelope: dict[str, Any] | None = None,
        budget: ByteBudget | None = None,
    ) -> None:
        self.session_id = session_id
        self.one_shot = one_shot
        """A 2026-07-28 stateless request: the channel ends once its one exchange is answered."""
        self.envelope = envelope
        """A stateless request's `_meta` envelope, for the requests the proxy itself sends upstream."""
        self._inbox: Mailbox[bytes | None] = Mailbox()
        self._charges: deque[int] = deque()
        """What each message in the inbox holds of `budget` (none if the router was waiting for it)."""
        self._budget = budget
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_id: dict[str, _Exchange] = {}
        self._exchanges: list[_Exchange] = []
        self._get: _Stream | None = None
        """The session's standalone (GET) stream, kept after its client leaves so it can resume."""
        self._backlog: deque[bytes] = deque(maxlen=BACKLOG_LIMIT)
        self.log = log or EventLog()
        self.closed = False
        self.last_active = time.monotonic()
        """When a request of this session last began or ended (idle expiry counts from it)."""

    def loop(self) -> asyncio.AbstractEventLoop:
        """The session's event loop, looked up once (each lookup is a system call on 3.11)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- MessageChannel --------------------------------------------------------------------

    async def receive(self) -> bytes | None:
        if self.closed:
            return None
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)
            return None
        charge = self._charges.popleft() if self._charges else 0  # none left once closed
        if charge and self._budget is not None:
            self._budget.give(charge)
        return item

    async def send(self, data: bytes) -> None:
        if self.closed:
            # The client ended the session (DELETE, shutdown): nobody reads what comes next. Like
            # a stdio client's closed stdout, not an error: the router still winds the session
            # down, counting every call in flight, until the upstream ends.
            return
        try:
            message = fastjson.loads(data)
        except ValueError:
            log.warning("router sent a message that is not JSON; dropped")
            return
        items = message if isinstance(message, list) else [message]
        responses = [m for m in items if isinstance(m, dict) and "method" not in m]
        if responses:
            self._route_response(data, [id_key(m.get("id")) for m in responses])
        else:
            self._route_server_message(data, items)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._inbox.put_nowait(None)
        if self._budget is not None:
            self._budget.give(sum(self._charges))  # messages the router will never take
        self._charges.clear()
        for exchange in self._exchanges:
            exchange.queue.put_nowait(None)
        if self._get is not None:
            self._get.queue.put_nowait(None)

    # -- routing ---------------------------------------------------------------------------

    def _emit(self, stream: _Stream, data: bytes) -> None:
        stream.seq += 1
        if stream.sse:
            if stream.number is not None:
                encoded = encode_event(data, event_id(stream.number, stream.seq))
                self.log.append(stream.number, stream.seq, encoded)
            else:
                encoded = encode_event(data)
            if stream.attached:
                stream.queue.put_nowait(encoded)
        elif stream.attached:
            stream.queue.put_nowait(data)

    def _route_response(self, data: bytes, keys: list[str]) -> None:
        exchange = next((self._by_id[k] for k in keys if k in self._by_id), None)
        if exchange is None and "null" in keys and self._exchanges:
            # An error about a message whose id could not be read belongs to the newest POST.
            exchange = self._exchanges[-1]
            keys = list(exchange.pending)
        if exchange is None:
            log.debug("response for an id no open POST is waiting for; dropped")
            return
        for key in keys:
            self._by_id.pop(key, None)
        exchange.pending.difference_update(keys)
        if exchange.status is not None and exchange.sse and exchange.seq == 0 and not exchange.pending:
            # The upstream refused the request with an HTTP error: answer with that status, as JSON.
            exchange.plain = True
            exchange.seq = 1
            if exchange.attached:
                exchange.queue.put_nowait(data)
        else:
            self._emit(exchange, data)
        if not exchange.pending:
            if exchange.attached:
                exchange.queue.put_nowait(None)
            self._forget(exchange)

    def _route_server_message(self, data: bytes, items: list[Any]) -> None:
        for item in items:
            params = item.get("params") if isinstance(item, dict) else None
            token = params.get("progressToken") if isinstance(params, dict) else None
            if token is not None:
                key = id_key(token)
                for exchange in self._exchanges:
                    if key in exchange.progress_tokens:
                        self._emit(exchange, data)
                        return
        if self._get is not None and self._get.attached:
            self._emit(self._get, data)
            return
        newest = next((e for e in reversed(self._exchanges) if e.attached), None)
        if newest is not None:
            self._emit(newest, data)
        else:
            self._backlog.append(data)

    def _forget(self, exchange: _Exchange) -> None:
        if exchange.forgotten:
            return
        exchange.forgotten = True
        if exchange in self._exchanges:
            self._exchanges.remove(exchange)
        by_id = self._by_id
        for key in exchange.keys:
            if by_id.get(key) is exchange:
                del by_id[key]

    # -- called by the HTTP handlers -------------------------------------------------------

    def submit(
        self, data: bytes, requests: list[dict[str, Any]], sse: bool = True, charge: int = 0
    ) -> _Exchange | None:
        """Hand a POSTed message to the router; an exchange if it holds requests to answer.
        `charge`: what the message holds of the byte budget until the router takes it."""
        exchange: _Exchange | None = None
        if requests:
            tokens: set[str] = set()
            for request in requests:
                meta = (
                    request.get("params", {}).get("_meta")
                    if isinstance(request.get("params"), dict)
                    else None
                )
                if isinstance(meta, dict) and meta.get("progressToken") is not None:
                    tokens.add(id_key(meta["progressToken"]))
            number = next(_stream_numbers) if sse and not self.one_shot else None
            if number is not None:
                self.log.open_stream(number)
            keys = tuple(id_key(r["id"]) for r in requests)
            exchange = _Exchange(
                number, sse, Mailbox(self.loop()), pending=set(keys), progress_tokens=tokens, keys=keys
            )
            self._exchanges.append(exchange)
            for key in exchange.pending:
                self._by_id[key] = exchange
        self._charges.append(charge)
        self._inbox.put_nowait(data)
        return exchange

    def note_status(self, request_id: Any, status: int) -> None:
        """The upstream answered this request with HTTP `status` (an error): answer with it too."""
        exchange = self._by_id.get(id_key(request_id))
        if exchange is not None:
            exchange.status = status

    def router_waiting(self) -> bool:
        """The router waits for this session's next message (it takes one on its next turn)."""
        return self._inbox.waiting()

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def busy(self) -> bool:
        """A client is reading one of this session's streams (a POST's answer or the GET stream)."""
        return (self._get is not None and self._get.attached) or any(e.attached for e in self._exchanges)

    def in_flight(self, requests: list[dict[str, Any]]) -> bool:
        """True if one of these ids is still awaiting an answer (its answer would be ambiguous)."""
        return any(id_key(r["id"]) in self._by_id for r in requests)

    def abandon(self, exchange: _Exchange) -> None:
        """The POST is answered or its client went away; later answers for it are dropped."""
        self._forget(exchange)
        self.touch()
        if self.one_shot and not self._exchanges and not self.closed:
            self.closed = True
            self._inbox.put_nowait(None)

    def detach(self, stream: _Stream, queue: Mailbox[bytes | None]) -> None:
        """The client reading `queue` is gone. A stream still awaiting answers keeps collecting
        them in the replay log (a client may resume it); a stateless one is abandoned."""
        if stream.queue is not queue:
            return  # a resumed stream took over
        stream.attached = False
        self.touch()
        if isinstance(stream, _Exchange) and (self.one_shot or not stream.pending):
            self.abandon(stream)

    def open_get_stream(self) -> _Stream | None:
        """A new standalone stream; None if a client is already reading one."""
        if self._get is not None and self._get.attached:
            return None
        number = next(_stream_numbers)
        self.log.open_stream(number)
        self._get = _Stream(number, True)
        while self._backlog:
            self._emit(self._get, self._backlog.popleft())
        return self._get

    def resume(self, number: int, after: int) -> _Stream:
        """The stream `number` of this session from after event `after`: its held events, then,
        while it is live, whatever it carries next. UnknownStream or EventsLost if impossible."""
        replayed = self.log.replay(number, after)
        live: _Stream | None = next((e for e in self._exchanges if e.number == number), None)
        if live is None and self._get is not None and self._get.number == number:
            live = self._get
        if live is None:
            done = _Stream(None, True)
            for encoded in replayed:
                done.queue.put_nowait(encoded)
            done.queue.put_nowait(None)
            return done
        live.queue.put_nowait(None)  # ends a reader still attached to the broken connection
        live.queue = Mailbox(self._loop)
        live.attached = True
        for encoded in replayed:
            live.queue.put_nowait(encoded)
        if live is self._get:
            while self._backlog:
                self._emit(live, self._backlog.popleft())
        return live


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


def _error(
    status: int, message: str, code: int = jsonrpc.INVALID_REQUEST, headers: dict[str, str] | None = None
) -> Reply:
    return Reply(status, jsonrpc.encode_error(code, message, None), "application/json", headers or {})


class HttpListener:
    """The `/mcp` endpoint: session table, request checks, and SSE/JSON responses."""

    def __init__(self, options: ListenerOptions, runner: SessionRunner) -> None:
        self.options = options
        self._runner = runner
        self.sessions: dict[str, ListenerChannel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.budget = ByteBudget(options.limits.max_buffered_bytes)
        self.guard = ConnectionGuard(options.limits)
        self._live_sessions = 0
        """Sessions started and not yet over: ended ones count until their runner (and its
        server process) is gone, so `max_sessions` bounds processes, not table entries."""
        self._full_reported = False
        self._expiry: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        port = options.address.port
        hosts = {str(options.address), f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
        self._hosts = {h.lower() for h in (*hosts, *options.allowed_hosts)}
        self._origins = {o.lower().rstrip("/") for o in options.allowed_origins}

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
                found = await self.handle(scope["method"], _headers(scope), receive)
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

    # -- checks ----------------------------------------------------------------------------

    def _origin_allowed(self, origin: str) -> bool:
        if origin.lower().rstrip("/") in self._origins:
            return True
        parts = urlsplit(origin)
        host = parts.hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def _refuse(self, headers: Headers) -> Reply | None:
        host = headers.get("host", "").lower()
        if host not in self._hosts:
            return _error(
                421,
                "the Host header names an address not served here (DNS rebinding protection); "
                "serve it with --allowed-host HOST:PORT",
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin):
            return _error(403, "Origin not allowed (DNS rebinding protection)")
        token = self.options.client_token
        if token is not None:
            supplied = headers.get("authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                return _error(401, "missing or wrong bearer token", headers={"www-authenticate": "Bearer"})
        return None

    # -- HTTP ------------------------------------------------------------------------------

    async def handle(self, method: str, headers: Headers, receive: Receive) -> Response | None:
        """One request to `/mcp`; None if the client disconnected before its body arrived."""
        refused = self._refuse(headers)
        if refused is not None:
            return refused
        if method == "POST":
            return await self._post(headers, receive)
        session = self.sessions.get(headers.get(SESSION_HEADER, ""))
        if session is None:
            if SESSION_HEADER not in headers:
                return _error(400, "Mcp-Session-Id header is required")
            return _error(404, "unknown or expired session")
        session.touch()
        if method == "DELETE":
            await self._end(session)
            return Reply(200)
        return self._get(headers, session)

    async def _post(self, headers: Headers, receive: Receive) -> Response | None:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return _error(415, "Content-Type must be application/json")
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
            return _error(refused.status, refused.message, code)
        try:
            message, canonical = jsonrpc.parse_canonical(body)
        except jsonrpc.MessageError as exc:
            return _error(400, exc.message, exc.code)
        if not canonical:
            # The router parses what it is given again: hand it the checked message in the
            # compact form its fast parser accepts, not the client's bytes a second time.
            body = fastjson.compact(message) or body
        malformed = _malformed_version(headers, message)
        if malformed is not None:
            return _error(400, malformed)
        mismatch = self._header_mismatch(headers, message)
        if mismatch is not None:
            return mismatch
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
            # 2026-07-28: no sessions; a stray Mcp-Session-Id is ignored, as the revision says.
            if not self.options.stateless:
                return _error(400, "stateless protocol revisions (2026-07-28 and later) are not served here")
            if not isinstance(message, dict):
                return _error(400, "a stateless request carries one JSON-RPC message, not a batch")
            if not requests:
                return Reply(202)
        elif sid is None:
            if not (isinstance(message, dict) and message.get("method") == "initialize"):
                return _error(400, "Mcp-Session-Id header is required (initialize first)")
            limit = self.options.limits.max_sessions
            if self._live_sessions >= limit:
                if not self._full_reported:
                    self._full_reported = True
                    log.warning("refusing new sessions: %d are open (--max-sessions)", limit)
                return _error(503, too_many_sessions(limit), jsonrpc.UPSTREAM_ERROR)
        else:
            session = self.sessions.get(sid)
            if session is None:
                return _error(404, "unknown or expired session")
            session.touch()
            if session.in_flight(requests):
                return _error(409, "a request with this id is already in flight in this session")
        # Until the router takes it, the message holds memory (unless the router is waiting for it).
        charge = 0 if session is not None and session.router_waiting() else len(body)
        if charge and not self.budget.take(charge):
            return _error(503, self.budget.exhausted(), jsonrpc.UPSTREAM_ERROR)
        if session is None:
            session = self._start_session(stateless, envelope_of(message) if stateless else None)
        sse = "text/event-stream" in headers.get("accept", "")
        exchange = session.submit(body, requests, sse, charge)
        reply_headers = {} if session.one_shot else {SESSION_HEADER: session.session_id}
        if exchange is None:
            return Reply(202, headers=reply_headers)
        if sse:
            prime = exchange.number is not None and (version or "") >= _PRIMING_FROM_VERSION
            return await self._sse_answer(session, exchange, reply_headers, prime)
        return await self._json_answer(session, exchange, reply_headers)

    def _header_mismatch(self, headers: Headers, message: Any) -> Reply | None:
        names: tuple[str, ...] = ("mcp-method", "mcp-name", "mcp-protocol-version")
        sent = {k: headers[k] for k in names if k in headers}
        wrong = mismatch(sent, message)
        if wrong is None:
            return None
        return _error(400, f"the {wrong} header does not match the request body", HEADER_MISMATCH)

    def _start_session(
        self, one_shot: bool = False, envelope: dict[str, Any] | None = None
    ) -> ListenerChannel:
        session = ListenerChannel(
            secrets.token_urlsafe(32),
            one_shot,
            None if one_shot else EventLog(self.options.replay_events, self.options.replay_bytes),
            envelope,
            self.budget,
        )
        if not one_shot:
            self.sessions[session.session_id] = session
            self._live_sessions += 1
            if self._expiry is None:
                self._expiry = asyncio.create_task(self._expire_idle_sessions())
        task = asyncio.create_task(self._run_session(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return session

    async def _run_session(self, session: ListenerChannel) -> None:
        try:
            await self._runner(session)
        except Exception as exc:
            # The type only: an exception's text may hold message content; the traceback is
            # there for whoever asks for debug logs.
            log.error("session %s failed (%s)", session.session_id[:8], type(exc).__name__)
            log.debug("session %s failed", session.session_id[:8], exc_info=True)
        finally:
            self.sessions.pop(session.session_id, None)
            await session.close()
            if not session.one_shot:
                self._live_sessions -= 1
                self._full_reported = False

    async def _expire_idle_sessions(self) -> None:
        """End sessions no client has used for `session_idle_timeout` (checked a few times per
        timeout); a client still reading one of a session's streams keeps it."""
        idle = self.options.limits.session_idle_timeout
        while True:
            await asyncio.sleep(min(max(idle / 4, 0.05), 30.0))
            cutoff = time.monotonic() - idle
            for session in [s for s in self.sessions.values() if s.last_active <= cutoff and not s.busy()]:
                log.info("session %s ended after %g s idle", session.session_id[:8], idle)
                await self._end(session)

    async def _end(self, session: ListenerChannel) -> None:
        self.sessions.pop(session.session_id, None)
        await session.close()

    async def _sse_answer(
        self, session: ListenerChannel, exchange: _Exchange, headers: dict[str, str], prime: bool
    ) -> Response:
        """SSE; when the first message already completes the exchange (the usual call), one plain
        response carries it, which saves the streaming machinery and a network write."""
        queue = exchange.queue
        timer = session.loop().call_later(PRIME_AFTER_SECONDS, queue.put_nowait, _PRIME) if prime else None
        try:
            first = await queue.get()
        except BaseException:
            session.abandon(exchange)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if first is None:
            session.abandon(exchange)
            return _error(502, "the session ended before the request was answered", jsonrpc.UPSTREAM_ERROR)
        if first == _PRIME:
            assert exchange.number is not None
            priming = f"id: {event_id(exchange.number, 0)}\ndata: \n\n".encode()
            return StreamingResponse(
                self._events(session, exchange, queue, priming),
                media_type="text/event-stream",
                headers=headers,
            )
        if exchange.plain:
            session.abandon(exchange)
            return Reply(exchange.status or 200, first, "application/json", headers)
        if not exchange.pending:
            # Everything for this exchange is already queued, up to its end marker.
            events = [first]
            while (item := queue.get_nowait()) is not None:
                if item:
                    events.append(item)
            session.abandon(exchange)
            return Reply(200, b"".join(events), "text/event-stream", headers)
        return StreamingResponse(
            self._events(session, exchange, queue, first), media_type="text/event-stream", headers=headers
        )

    async def _events(
        self, session: ListenerChannel, stream: _Stream, queue: Mailbox[bytes | None], first: bytes
    ) -> AsyncIterator[bytes]:
        try:
            yield first
            while (item := await queue.get()) is not None:
                if item:
                    yield item
        finally:
            session.detach(stream, queue)

    async def _json_answer(
        self, session: ListenerChannel, exchange: _Exchange, headers: dict[str, str]
    ) -> Response:
        answers: list[Any] = []
        try:
            while (item := await exchange.queue.get()) is not None:
                parsed = fastjson.loads(item)
                if isinstance(parsed, dict) and "method" in parsed:
                    session._backlog.append(item)  # a server message; the GET stream will carry it
                    continue
                answers.extend(parsed if isinstance(parsed, list) else [parsed])
        finally:
            session.abandon(exchange)
        if not answers:
            return _error(502, "the session ended before the request was answered", jsonrpc.UPSTREAM_ERROR)
        body = json.dumps(
            answers[0] if len(answers) == 1 else answers, ensure_ascii=False, separators=(",", ":")
        )
        return Reply(exchange.status or 200, body.encode(), "application/json", headers)

    def _get(self, headers: Headers, session: ListenerChannel) -> Response:
        if "text/event-stream" not in headers.get("accept", ""):
            return _error(406, "GET needs Accept: text/event-stream")
        last = headers.get("last-event-id")
        if last is not None:
            return self._resume(session, last)
        stream = session.open_get_stream()
        if stream is None:
            return _error(409, "this session already has a GET stream open")
        return StreamingResponse(
            self._events(session, stream, stream.queue, b": stream open\n\n"),
            media_type="text/event-stream",
            headers={SESSION_HEADER: session.session_id},
        )

    def _resume(self, session: ListenerChannel, last: str) -> Response:
        """GET with `Last-Event-ID`: that stream's later events, then the stream itself if live."""
        position = parse_event_id(last)
        if position is None:
            return _error(400, "Last-Event-ID is not an event id this server sent")
        try:
            stream = session.resume(*position)
        except UnknownStream:
            return _error(404, "Last-Event-ID names no stream of this session")
        except EventsLost:
            return _error(410, "events after Last-Event-ID are no longer held; the stream cannot resume")
        return StreamingResponse(
            self._events(session, stream, stream.queue, b": stream resumed\n\n"),
            media_type="text/event-stream",
            headers={SESSION_HEADER: session.session_id},
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
        for session in list(self.sessions.values()):
            await self._end(session)
        if self._tasks:
            # Ended sessions close their upstreams (a DELETE, a child's exit) given a moment.
            await asyncio.wait(set(self._tasks), timeout=SHUTDOWN_GRACE_SECONDS)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def serve(
    listener: HttpListener, started: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> None:
    """Run uvicorn on the listener's address until `stop` is set (or the task is cancelled).

    Signals stay with the caller (it sets `stop`), so the proxy decides how to shut down.
    """
    address = listener.options.address
    config = uvicorn.Config(
        listener.app,
        interface="asgi3",  # a bound method is not auto-detected as ASGI 3
        host=address.host,
        port=address.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # One write per small response (coalesced); deadlines and a connection cap (limits).
        http=guarded_protocol(listener.guard),
        ws="none",
        proxy_headers=False,  # clients are not behind a trusted proxy; X-Forwarded-* is not read
        server_header=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]

    async def watch() -> None:
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.01)
        if started is not None and server.started:
            started.set()
        if stop is not None:
            await stop.wait()
            server.should_exit = True

    watcher = asyncio.create_task(watch())
    try:
        await server.serve()
    except SystemExit:
        # uvicorn exits the process when it cannot bind; report it as an error instead.
        raise OSError(f"could not listen on {address}") from None
    finally:
        watcher.cancel()
        await listener.shutdown()
    if not server.started:
        raise OSError(f"could not listen on {address}")
