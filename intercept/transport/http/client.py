"""Upstream Streamable HTTP transport: the proxy's channel to a remote MCP server (`--upstream URL`).

Framing only, no policy. Each message the router sends becomes one POST; JSON and SSE response
bodies are turned back into messages for `receive()`. What the transport tracks:

* the `Mcp-Session-Id` the server assigns at `initialize`, sent on every later request; a 404
  for that session re-runs the client's own `initialize` (with a private request id) and
  retries the message once;
* the GET stream for server-initiated messages, opened once a session exists and resumed with
  `Last-Event-ID` when it drops;
* `DELETE` of the session on `close()`;
* the 2026-07-28 request headers, `Mcp-Method` and `Mcp-Name`, sent on every POST (servers on
  older revisions ignore them), and `MCP-Protocol-Version`: the version a request names in its
  `_meta` (2026-07-28, no session), else the one `initialize` negotiated;
* `--header` values on every request.

Values learned from the server are checked before they go into a header (see
`intercept.protocol.mcp_headers`): an `initialize` answer whose `protocolVersion` is not a
revision date, or a session id that is not visible ASCII, fails the `initialize` with a JSON-RPC
error instead of starting a session; an SSE event id that could not be a header value is not
used to resume.

A request that cannot be delivered (connection refused, timeout, an HTTP error status, a body
that is not JSON-RPC) is answered with a JSON-RPC error carrying its id, so the client never
waits on silence.

POSTs, the per-call path, go through `intercept.transport.http.connection` (keep-alive
connections parsed by httptools): in the same-run A/B it relays a call with about half the CPU of
aiohttp (BENCHMARKS.md, "Streamable HTTP and Redis"). aiohttp (one pooled session per
channel, created on first use) carries what that client does not: every request when a proxy is
configured, the GET stream, its resumption, re-initialization and DELETE.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from yarl import URL

from intercept.protocol import fastjson
from intercept.protocol.fastjson import id_key
from intercept.protocol.mcp_headers import (
    PROTOCOL_VERSION_META_KEY,
    PROTOCOL_VERSION_RULE,
    SESSION_ID_RULE,
    UnsafeHeader,
    add_envelope,
    envelope_of,
    request_headers,
    valid_field_value,
    valid_protocol_version,
    valid_session_id,
)
from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES, FrameTooLarge
from intercept.transport.http.connection import ConnectionPool, HeaderInjection, check_fields
from intercept.transport.http.mailbox import Mailbox
from intercept.transport.http.sse import SseEvent, decode_body, decode_stream

log = logging.getLogger(__name__)

UPSTREAM_UNAVAILABLE = -32000
"""JSON-RPC error code for 'the upstream could not be reached or answered badly'."""

SESSION_HEADER = "mcp-session-id"
PROTOCOL_HEADER = "mcp-protocol-version"
LAST_EVENT_HEADER = "last-event-id"
_REINIT_ID = "intercept-reinitialize"
_GET_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
_DELETE_TIMEOUT = aiohttp.ClientTimeout(total=5.0)

HTTP_ERRORS = (aiohttp.ClientError, OSError)
"""What a failed exchange raises (TimeoutError is an OSError)."""


BAD_SESSION_ID = f"upstream assigned an Mcp-Session-Id that is not {SESSION_ID_RULE}; the session is not used"
BAD_PROTOCOL_VERSION = (
    f"upstream initialize result.protocolVersion is not {PROTOCOL_VERSION_RULE}; the session is not used"
)


def error_response(request_id: Any, message: str, code: int = UPSTREAM_UNAVAILABLE) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}},
        separators=(",", ":"),
    ).encode()


def _request_ids(message: Any) -> list[Any]:
    items = message if isinstance(message, list) else [message]
    return [
        m["id"]
        for m in items
        if isinstance(m, dict) and isinstance(m.get("method"), str) and m.get("id") is not None
    ]


class _Answer(Protocol):
    """An upstream POST's response, from either HTTP client."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self, limit: int) -> bytes | None: ...

    def complete_body(self) -> bytes | None: ...

    def close(self) -> None: ...


class _AiohttpAnswer:
    """aiohttp's response as an `_Answer` (used when the upstream is reached through a proxy)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()

    async def read(self, limit: int) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        async for chunk in self._response.content.iter_any():
            size += len(chunk)
            if size > limit:
                return None
            parts.append(chunk)
        return b"".join(parts)

    def complete_body(self) -> bytes | None:
        return None

    def close(self) -> None:
        self._response.release()


class SessionExpired(Exception):
    """The server answered 404 for the session id the request carried."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


class HttpUpstream:
    """`MessageChannel` to a Streamable HTTP server."""

    closed_reason = "the proxy closed its session with the upstream MCP server"
    """What requests still pending are told when this channel ends: only the proxy ends it."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        timeout: float = 30.0,
        on_error_status: Callable[[Any, int], None] | None = None,
        envelope: Mapping[str, Any] | None = None,
        pool: ConnectionPool | None = None,
    ) -> None:
        self.url = url
        self._on_error_status = on_error_status
        """Told (request id, HTTP status) before an error answer from an HTTP error status is queued."""
        self._url = URL(url)
        self.display = display_url(url)
        self._headers = dict(headers or {})
        self._max = max_message_bytes
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None
        self._pool: ConnectionPool | None = pool
        self._owns_pool = pool is None
        """A pool passed in is shared (stateless requests); it outlives this channel."""
        """POSTs go through this keep-alive httptools client unless a proxy is configured."""
        self._proxy = env_proxy(url)
        self._inbox: Mailbox[bytes | FrameTooLarge | None] = Mailbox()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._session_id: str | None = None
        self._protocol_version: str | None = None
        self._initialize: dict[str, Any] | None = None
        self._initialized_note: bytes | None = None
        self._ready = asyncio.Event()
        self._ready.set()
        self._reinit_lock = asyncio.Lock()
        self._get_task: asyncio.Task[None] | None = None
        self._closed = False
        self._envelope: dict[str, Any] | None = dict(envelope) if envelope else None
        """The 2026-07-28 `_meta` envelope added to requests that carry none (the proxy's own)."""

    @property
    def session_id(self) -> str | None:
        return self._session_id

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256),
                # Connecting may take `timeout`; reading has no limit (calls and streams can be long).
                timeout=aiohttp.ClientTimeout(total=None, connect=self._timeout, sock_read=None),
                # trust_env would read ~/.netrc in a thread on every request; proxies are
                # taken from the environment once, in `env_proxy`.
                trust_env=False,
            )
        return self._http

    # -- MessageChannel --------------------------------------------------------------------

    async def receive(self) -> bytes | None:
        if self._closed and self._inbox.empty():
            return None
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)
            return None
        if isinstance(item, FrameTooLarge):
            raise item
        return item

    def learn_envelope(self, data: bytes) -> None:
        """Note the 2026-07-28 envelope of a client request (raw bytes), for the proxy's own requests."""
        envelope = stateless_envelope(data)
        if envelope is not None:
            self._envelope = envelope

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionError("upstream channel is closed")
        try:
            message = fastjson.loads(data)
        except ValueError:
            message = None
        if self._envelope is not None:
            # The proxy's own requests (the schema-learning tools/list) need the client's envelope.
            enveloped = add_envelope(message, self._envelope)
            if enveloped is not message:
                message = enveloped
                data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        if isinstance(message, dict) and message.get("method") == "initialize":
            # Everything after initialize needs the session id its response assigns.
            self._initialize = message
            self._ready.clear()
            self._spawn(self._post(data, message, first=True))
            return
        if isinstance(message, dict) and message.get("method") == "notifications/initialized":
            self._initialized_note = data
        await self._ready.wait()
        self._spawn(self._post(data, message))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._get_task is not None:
            self._get_task.cancel()
        await asyncio.gather(
            *self._tasks, *([self._get_task] if self._get_task else []), return_exceptions=True
        )
        if self._session_id is not None and self._http is not None:
            with contextlib.suppress(*HTTP_ERRORS):
                async with self._http.delete(
                    self._url,
                    headers=self._base_headers(),
                    timeout=_DELETE_TIMEOUT,
                    allow_redirects=False,
                    proxy=self._proxy,
                ):
                    pass
        if self._http is not None:
            await self._http.close()
        if self._pool is not None and self._owns_pool:
            self._pool.close()
        self._inbox.put_nowait(None)

    # -- POST ------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()  # once: each lookup is a system call on 3.11
        task: asyncio.Task[None] = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _base_headers(self) -> dict[str, str]:
        headers = dict(self._headers)
        if self._session_id is not None:
            headers[SESSION_HEADER] = self._session_id
        if self._protocol_version is not None:
            headers[PROTOCOL_HEADER] = self._protocol_version
        return headers

    async def _post(self, data: bytes, message: Any, *, first: bool = False, retried: bool = False) -> None:
        ids = _request_ids(message)
        try:
            await self._exchange(data, message, ids, first=first)
        except SessionExpired as expired:
            if retried or first:
                self._fail(ids, "upstream MCP session expired and could not be re-established")
                return
            if await self._reinitialize(expired.session_id):
                await self._post(data, message, retried=True)
            else:
                self._fail(ids, "upstream MCP session expired and re-initialization failed")
        except ssl.SSLCertVerificationError:
            self._fail(
                ids,
                f"upstream {self.display} unreachable: its TLS certificate is not trusted "
                "(SSLCertVerificationError); if it comes from an internal CA, add the CA to the "
                "trust store (SSL_CERT_FILE)",
            )
        except HTTP_ERRORS as exc:
            self._fail(ids, f"upstream {self.display} unreachable: {type(exc).__name__}")
        except (UnsafeHeader, HeaderInjection) as exc:
            log.error("request to the upstream not sent: %s", exc)
            self._fail(ids, f"request not sent to the upstream: {exc}")
        finally:
            if first:
                self._ready.set()

    async def _send_post(self, data: bytes, headers: dict[str, str]) -> _Answer:
        if self._proxy is None:
            if self._pool is None:
                self._pool = ConnectionPool(self.url, limit=256, connect_timeout=self._timeout)
            return await self._pool.request("POST", headers.items(), data)
        check_fields(headers.items())
        response = await self._client().post(
            self._url, data=data, headers=headers, allow_redirects=False, proxy=self._proxy
        )
        return _AiohttpAnswer(response)

    async def _exchange(self, data: bytes, message: Any, ids: list[Any], *, first: bool) -> None:
        headers = self._base_headers()
        headers.update(request_headers(message))
        headers["content-type"] = "application/json"
        headers["accept"] = "application/json, text/event-stream"
        sent_session = headers.get(SESSION_HEADER)
        answer = await self._send_post(data, headers)
        try:
            status = answer.status
            # Judged by the session this request carried: another request's 404 may already
            # have started (or finished) re-initializing, changing `self._session_id`.
            if status == 404 and sent_session is not None and not first:
                raise SessionExpired(sent_session)
            if first and status < 400:
                assigned = answer.headers.get(SESSION_HEADER)
                if assigned is not None and not valid_session_id(assigned):
                    log.error("%s", BAD_SESSION_ID)
                    self._fail(ids, BAD_SESSION_ID)
                    return
                self._session_id = assigned or self._session_id
            if status == 202 or (not ids and status < 400):
                if isinstance(message, dict) and message.get("method") == "notifications/initialized":
                    self._open_get_stream()
                return
            content_type = answer.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "text/event-stream" and status < 400:
                await self._read_stream(answer, pending=set(map(id_key, ids)))
                return
            body = await answer.read(self._max)
            if body is None:
                self._fail(ids, "upstream response exceeds the message size limit")
                return
            if status >= 400:
                self._report_status(ids, status)
            if self._deliver_json(body, ids, status):
                return
            self._fail(ids, f"upstream {self.display} answered HTTP {status}")
        finally:
            answer.close()

    def _report_status(self, ids: list[Any], status: int) -> None:
        if self._on_error_status is None:
            return
        # 401/403/407 concern the proxy's own credentials for the upstream, not the client's.
        passed = 502 if status in (401, 403, 407) else status
        for request_id in ids:
            self._on_error_status(request_id, passed)

    def _deliver_json(self, body: bytes, ids: list[Any], status: int = 200) -> bool:
        """Queue a JSON response body if it is JSON-RPC; False if it is not."""
        try:
            parsed = fastjson.loads(body)
        except ValueError:
            return False
        items = parsed if isinstance(parsed, list) else [parsed]
        if not items or not all(isinstance(m, dict) and m.get("jsonrpc") == "2.0" for m in items):
            return False
        answered = {id_key(m.get("id")) for m in items}
        if ids and not answered & set(map(id_key, ids)):
            # A JSON-RPC error with a null id (a 400 from the server) is about our request: keep
            # the server's code and message, under the request's id.
            error = parsed.get("error") if isinstance(parsed, dict) else None
            if (
                len(ids) == 1
                and status >= 400
                and isinstance(error, dict)
                and isinstance(error.get("code"), int)
                and isinstance(error.get("message"), str)
            ):
                rekeyed = {"jsonrpc": "2.0", "id": ids[0], "error": error}
                self._inbox.put_nowait(json.dumps(rekeyed, separators=(",", ":")).encode())
                return True
            return False
        if not self._note_protocol(items):
            self._fail(ids, BAD_PROTOCOL_VERSION)
            return True
        self._inbox.put_nowait(body)
        return True

    async def _read_stream(self, answer: _Answer, pending: set[str]) -> None:
        last_id: str | None = None
        complete = answer.complete_body()
        if complete is not None:
            # The usual answer is already whole: decode it without any async iteration.
            for item in decode_body(complete, self._max):
                last_id = self._take(item, pending) or last_id
        else:
            async for item in decode_stream(answer.chunks(), self._max):
                last_id = self._take(item, pending) or last_id
        if pending and last_id is not None and self._session_id is not None:
            # The server closed the stream before answering; resume it (SEP-1699 polling).
            await self._resume(last_id, pending)
        if pending:
            self._fail([json.loads(p) for p in pending], "upstream closed the stream before answering")

    def _take(self, item: SseEvent | FrameTooLarge, pending: set[str]) -> str | None:
        """Queue one decoded item of a POST's stream; the event's id, if it has one."""
        if isinstance(item, FrameTooLarge):
            self._inbox.put_nowait(item)
            return None
        self._accept_event(item, pending)
        return _resumable(item.id)

    def _accept_event(self, event: SseEvent, pending: set[str]) -> None:
        if event.event != "message" or not event.data:
            return
        try:
            parsed = fastjson.loads(event.data)
        except ValueError:
            log.warning("upstream sent an SSE event that is not JSON; dropped")
            return
        for item in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(item, dict) and "method" not in item:
                pending.discard(id_key(item.get("id")))
                if not self._note_protocol([item]):
                    self._inbox.put_nowait(error_response(item.get("id"), BAD_PROTOCOL_VERSION))
                    return
        self._inbox.put_nowait(event.data.encode())

    async def _resume(self, last_id: str, pending: set[str]) -> None:
        for delay in _GET_RETRY_SECONDS:
            if not pending or self._closed:
                return
            headers = self._base_headers()
            headers["accept"] = "text/event-stream"
            headers[LAST_EVENT_HEADER] = last_id
            try:
                async with self._client().get(
                    self._url, headers=headers, allow_redirects=False, proxy=self._proxy
                ) as response:
                    if response.status >= 400:
                        return
                    async for item in decode_stream(response.content.iter_any(), self._max):
                        if isinstance(item, FrameTooLarge):
                            self._inbox.put_nowait(item)
                            continue
                        last_id = _resumable(item.id) or last_id
                        self._accept_event(item, pending)
            except HTTP_ERRORS:
                await asyncio.sleep(delay)

    def _note_protocol(self, items: list[Any]) -> bool:
        """Learn the version an `initialize` answer negotiated (sent as a header from then on);
        False if it is not a revision date: it must never reach a header, and the session is unusable."""
        for item in items:
            result = item.get("result") if isinstance(item, dict) else None
            if (
                isinstance(result, dict)
                and isinstance(result.get("protocolVersion"), str)
                and self._initialize is not None
                and id_key(item.get("id")) in {id_key(self._initialize.get("id")), id_key(_REINIT_ID)}
            ):
                version = result["protocolVersion"]
                if not valid_protocol_version(version):
                    log.error("%s", BAD_PROTOCOL_VERSION)
                    self._session_id = None
                    return False
                self._protocol_version = version
        return True

    def _fail(self, ids: list[Any], reason: str) -> None:
        if not ids:
            log.warning("%s (a notification or response was lost)", reason)
        for request_id in ids:
            self._inbox.put_nowait(error_response(request_id, reason))

    # -- session ---------------------------------------------------------------------------

    def _open_get_stream(self) -> None:
        if self._session_id is not None and self._get_task is None and not self._closed:
            self._get_task = asyncio.create_task(self._listen())

    async def _reinitialize(self, stale: str) -> bool:
        """Replace the expired session `stale` by running the client's initialize again under a
        private id; True once a new session exists (perhaps made by a concurrent request)."""
        if self._initialize is None:
            return False
        async with self._reinit_lock:
            if self._session_id != stale:
                return self._session_id is not None  # another request already re-initialized
            self._session_id = None
            self._ready.clear()
            try:
                body = json.dumps({**self._initialize, "id": _REINIT_ID}, separators=(",", ":")).encode()
                headers = {**self._base_headers(), "content-type": "application/json"}
                headers["accept"] = "application/json, text/event-stream"
                headers.update(request_headers(self._initialize))
                client = self._client()
                async with client.post(
                    self._url, data=body, headers=headers, allow_redirects=False, proxy=self._proxy
                ) as response:
                    if response.status >= 400:
                        return False
                    assigned = response.headers.get(SESSION_HEADER)
                    if assigned is not None and not valid_session_id(assigned):
                        log.error("%s", BAD_SESSION_ID)
                        return False
                    self._session_id = assigned
                    await response.read()
                if self._initialized_note is not None:
                    headers = self._base_headers()
                    headers.update(
                        {"content-type": "application/json", "mcp-method": "notifications/initialized"}
                    )
                    async with client.post(
                        self._url,
                        data=self._initialized_note,
                        headers=headers,
                        allow_redirects=False,
                        proxy=self._proxy,
                    ) as response:
                        await response.read()
                log.info("upstream session expired; re-initialized")
                return self._session_id is not None
            except HTTP_ERRORS:
                return False
            finally:
                self._ready.set()

    async def _listen(self) -> None:
        """The GET stream: server-initiated requests and notifications outside any POST."""
        last_id: str | None = None
        attempt = 0
        while not self._closed and self._session_id is not None:
            headers = self._base_headers()
            headers["accept"] = "text/event-stream"
            if last_id is not None:
                headers[LAST_EVENT_HEADER] = last_id
            try:
                async with self._client().get(
                    self._url, headers=headers, allow_redirects=False, proxy=self._proxy
                ) as response:
                    if response.status >= 400:
                        # 405: the server offers no GET stream; anything else: not retried.
                        return
                    attempt = 0
                    async for item in decode_stream(response.content.iter_any(), self._max):
                        if isinstance(item, FrameTooLarge):
                            self._inbox.put_nowait(item)
                            continue
                        last_id = _resumable(item.id) or last_id
                        if item.event == "message" and item.data:
                            self._inbox.put_nowait(item.data.encode())
            except HTTP_ERRORS:
                pass
            if attempt >= len(_GET_RETRY_SECONDS):
                log.warning("upstream GET stream lost; server-initiated messages now arrive only on POSTs")
                return
            await asyncio.sleep(_GET_RETRY_SECONDS[attempt])
            attempt += 1


def _resumable(event_id: str | None) -> str | None:
    """An SSE event id fit to send back as `Last-Event-ID`, else None (the stream resumes from an
    earlier id, or not at all)."""
    return event_id if event_id and valid_field_value(event_id) else None


def stateless_envelope(data: bytes) -> dict[str, Any] | None:
    """The 2026-07-28 `_meta` envelope of a request (raw bytes), if it names such a version."""
    if PROTOCOL_VERSION_META_KEY.encode() not in data:
        return None  # the usual case, decided without parsing
    try:
        return envelope_of(json.loads(data))
    except ValueError:
        return None


def env_proxy(url: str) -> str | None:
    """The proxy `HTTP(S)_PROXY`/`ALL_PROXY` name for this URL, unless `NO_PROXY` exempts its host."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


def display_url(url: str) -> str:
    """The URL without credentials or query string (either may carry a secret), for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))
