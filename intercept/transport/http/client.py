"""Upstream Streamable HTTP transport: the proxy's channel to a remote MCP server (`--upstream URL`).

Framing only, no policy. Each message the router sends becomes one POST; JSON and SSE response
bodies are turned back into messages for `receive()` (SSE: `upstream_events`). What the channel
tracks:

* the MCP session (`upstream_session`): the `Mcp-Session-Id` the server assigns at
  `initialize`, sent on every later request, and re-initialization when the server forgets it
  (a 404 for that session; the message is then retried once);
* the GET stream for server-initiated messages, opened once a session exists;
* `DELETE` of the session on `close()`;
* the 2026-07-28 request headers, `Mcp-Method` and `Mcp-Name`, sent on every POST (servers on
  older revisions ignore them), and `MCP-Protocol-Version`: the version a request names in its
  `_meta` (2026-07-28, no session), else the one `initialize` negotiated;
* `--header` values on every request.

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
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from yarl import URL

from intercept.protocol import fastjson
from intercept.protocol.fastjson import id_key
from intercept.protocol.mcp_headers import (
    PROTOCOL_VERSION_META_KEY,
    SESSION_HEADER,
    UnsafeHeader,
    add_envelope,
    envelope_of,
    request_headers,
)
from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES, FrameTooLarge, ProxyEndedChannel
from intercept.transport.http.connection import ConnectionPool, HeaderInjection, check_fields
from intercept.transport.http.mailbox import Mailbox
from intercept.transport.http.upstream_answer import HTTP_ERRORS, AiohttpAnswer, Answer, error_response
from intercept.transport.http.upstream_events import UpstreamEvents
from intercept.transport.http.upstream_session import BAD_PROTOCOL_VERSION, BAD_SESSION_ID, UpstreamSession

log = logging.getLogger(__name__)

_DELETE_TIMEOUT = aiohttp.ClientTimeout(total=5.0)


def _request_ids(message: Any) -> list[Any]:
    items = message if isinstance(message, list) else [message]
    return [
        m["id"]
        for m in items
        if isinstance(m, dict) and isinstance(m.get("method"), str) and m.get("id") is not None
    ]


class SessionExpired(Exception):
    """The server answered 404 for the session id the request carried."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id


class HttpUpstream(ProxyEndedChannel):
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
        self._max = max_message_bytes
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None
        self._pool: ConnectionPool | None = pool
        """POSTs go through this keep-alive httptools client unless a proxy is configured."""
        self._owns_pool = pool is None
        """A pool passed in is shared (stateless requests); it outlives this channel."""
        self._proxy = env_proxy(url)
        self._inbox: Mailbox[bytes | FrameTooLarge | None] = Mailbox()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._session = UpstreamSession(headers or {})
        self._events = UpstreamEvents(
            self._inbox, self._session, self._get, max_message_bytes, lambda: self._closed
        )
        self._closed = False
        self._envelope: dict[str, Any] | None = dict(envelope) if envelope else None
        """The 2026-07-28 `_meta` envelope added to requests that carry none (the proxy's own)."""

    @property
    def session_id(self) -> str | None:
        return self._session.id

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

    def _get(self, headers: dict[str, str]) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
        return self._client().get(self._url, headers=headers, allow_redirects=False, proxy=self._proxy)

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
        session = self._session
        if isinstance(message, dict) and message.get("method") == "initialize":
            # Everything after initialize needs the session id its response assigns.
            session.initialize = message
            session.ready.clear()
            self._spawn(self._post(data, message, first=True))
            return
        if isinstance(message, dict) and message.get("method") == "notifications/initialized":
            session.initialized_note = data
        await session.ready.wait()
        self._spawn(self._post(data, message))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        get_task = self._events.stop()
        await asyncio.gather(*self._tasks, *([get_task] if get_task else []), return_exceptions=True)
        if self._session.id is not None and self._http is not None:
            with contextlib.suppress(*HTTP_ERRORS):
                async with self._http.delete(
                    self._url,
                    headers=self._session.base_headers(),
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

    async def _post(self, data: bytes, message: Any, *, first: bool = False, retried: bool = False) -> None:
        ids = _request_ids(message)
        try:
            await self._exchange(data, message, ids, first=first)
        except SessionExpired as expired:
            if retried or first:
                self._fail(ids, "upstream MCP session expired and could not be re-established")
                return
            if await self._session.reinitialize(expired.session_id, self._client(), self._url, self._proxy):
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
                self._session.ready.set()

    async def _send_post(self, data: bytes, headers: dict[str, str]) -> Answer:
        if self._proxy is None:
            if self._pool is None:
                self._pool = ConnectionPool(self.url, limit=256, connect_timeout=self._timeout)
            return await self._pool.request("POST", headers.items(), data)
        check_fields(headers.items())
        response = await self._client().post(
            self._url, data=data, headers=headers, allow_redirects=False, proxy=self._proxy
        )
        return AiohttpAnswer(response)

    async def _exchange(self, data: bytes, message: Any, ids: list[Any], *, first: bool) -> None:
        headers = self._session.base_headers()
        headers.update(request_headers(message))
        headers["content-type"] = "application/json"
        headers["accept"] = "application/json, text/event-stream"
        sent_session = headers.get(SESSION_HEADER)
        answer = await self._send_post(data, headers)
        try:
            status = answer.status
            # Judged by the session this request carried: another request's 404 may already
            # have started (or finished) re-initializing, changing the session id.
            if status == 404 and sent_session is not None and not first:
                raise SessionExpired(sent_session)
            if first and status < 400 and not self._session.adopt(answer.headers.get(SESSION_HEADER)):
                self._fail(ids, BAD_SESSION_ID)
                return
            if status == 202 or (not ids and status < 400):
                if isinstance(message, dict) and message.get("method") == "notifications/initialized":
                    self._events.open_get_stream()
                return
            content_type = answer.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type == "text/event-stream" and status < 400:
                pending = set(map(id_key, ids))
                await self._events.read_answer(answer, pending)
                if pending:
                    self._fail(
                        [json.loads(p) for p in pending], "upstream closed the stream before answering"
                    )
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
        if not self._session.note_protocol(items):
            self._fail(ids, BAD_PROTOCOL_VERSION)
            return True
        self._inbox.put_nowait(body)
        return True

    def _fail(self, ids: list[Any], reason: str) -> None:
        if not ids:
            log.warning("%s (a notification or response was lost)", reason)
        for request_id in ids:
            self._inbox.put_nowait(error_response(request_id, reason))


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
