"""A small HTTP/1.1 client for the upstream's POSTs: keep-alive connections parsed by httptools.

The proxy sends one POST per message to one origin, usually answered by one small body. On that
path aiohttp's generality (cookie jars, redirects, payload registry, tracing, timers) costs more
CPU than the exchange itself; this client does only what the upstream POST needs:

* one pool of keep-alive connections to one origin (`http://` or `https://`), at most `limit`;
* requests with a body and a fixed set of headers; responses read with `httptools` (chunked or
  length-delimited bodies, or until close), handed over as they arrive, so SSE streams work;
* a connection whose response did not end cleanly, or whose server asked to close, is not reused;
* a request head with a CR, LF or NUL inside a header is never written (HeaderInjection): on a
  keep-alive connection a line break in a value would start a second, smuggled request.

Redirects are not followed (the upstream transport refuses them anyway) and proxies are not
supported: `HttpUpstream` keeps aiohttp for a proxied upstream and for its GET stream and DELETE.
BENCHMARKS.md ("Streamable HTTP and Redis") has the A/B measurement that justifies this module.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable
from urllib.parse import urlsplit

import httptools

_READ_HIGH_WATER = 256 * 1024
"""Buffered response bytes at which reading pauses until the consumer catches up."""


class HeaderInjection(ValueError):
    """A header name or value holds a CR, LF, NUL or a character HTTP cannot carry; the request is
    not sent."""

    def __init__(self) -> None:
        super().__init__("a header would hold a line break, NUL or non-Latin-1 text; refused")


def check_fields(headers: Iterable[tuple[str, str]]) -> None:
    """HeaderInjection if any name or value holds CR, LF or NUL."""
    for name, value in headers:
        if "\r" in name or "\n" in name or "\0" in name or "\r" in value or "\n" in value or "\0" in value:
            raise HeaderInjection


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.received = False
        """Whether any byte arrived for the current request."""
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self.response: Response | None = None
        self._headers: dict[str, str] = {}
        self._header_name = b""
        self._informational = False
        self._length_known = False
        """The body ends by Content-Length or chunking, not by the connection closing."""

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.response is None:
            self._close()  # bytes nobody asked for: the connection cannot be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionError("upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed HTTP response from upstream: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost finishes the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            if response.head.done() and not self._length_known and exc is None:
                # A body delimited by the connection's end.
                response._finish()
            else:
                self._fail(ConnectionError("upstream closed the connection before answering"))

    def pause_writing(self) -> None:  # the request bodies are small; nothing to throttle
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if name:
            self._header_name = name.lower()
            self._headers.setdefault(self._header_name.decode("latin-1"), value.decode("latin-1"))
        else:
            key = self._header_name.decode("latin-1")
            self._headers[key] += value.decode("latin-1")

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # 100 Continue, 103 Early Hints: the real answer follows on the same connection.
            self._informational = True
            self._headers = {}
            return
        response.status = status
        response.headers = self._headers
        self._length_known = (
            "content-length" in self._headers
            or "chunked" in self._headers.get("transfer-encoding", "").lower()
        )
        if not response.head.done():
            response.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        assert response is not None
        if self._informational:
            self._informational = False
            return
        response.keep_alive = self._parser.should_keep_alive()
        response._finish()

    # -- helpers ---------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        self._close()
        response = self.response
        if response is not None:
            response._fail(exc)

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def start(self, request: bytes, response: Response) -> None:
        assert self.transport is not None
        self._reset()
        self.received = False
        self.response = response
        response._connection = self
        self.transport.write(request)


class Response:
    """Status and headers once `head` is done; the body through `chunks()` or `read()`."""

    def __init__(self, pool: ConnectionPool, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        self._loop = loop
        self._connection: _Connection | None = None
        self.head: asyncio.Future[None] = loop.create_future()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = False
        self.complete = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._paused = False

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _READ_HIGH_WATER and not self._paused and self._connection is not None:
            transport = self._connection.transport
            if transport is not None:
                transport.pause_reading()
                self._paused = True
        self._wake()

    def _finish(self) -> None:
        self.complete = True
        if self._paused and self._connection is not None and self._connection.transport is not None:
            # The last bytes arrived with the ones that paused reading; the next request needs it on.
            self._connection.transport.resume_reading()
            self._paused = False
        if not self.head.done():
            self.head.set_result(None)
        self._wake()
        self._release(self.keep_alive)

    def _fail(self, exc: Exception) -> None:
        if self.complete:
            return
        self._error = exc
        self.complete = True
        if not self.head.done():
            self.head.set_exception(exc)
            self.head.exception()  # retrieved here: nobody may be awaiting it any more
        self._wake()
        self._release(False)

    def _release(self, reuse: bool) -> None:
        """Hand the connection back exactly once: to the idle list, or closed."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.response = None
            self._pool._give_back(connection, reuse)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; ConnectionError if the connection breaks first."""
        try:
            while True:
                while self._chunks:
                    chunk = self._chunks.popleft()
                    self._buffered -= len(chunk)
                    if self._paused and self._buffered <= _READ_HIGH_WATER // 2:
                        self._paused = False
                        if self._connection is not None and self._connection.transport is not None:
                            self._connection.transport.resume_reading()
                    yield chunk
                if self._error is not None:
                    raise self._error
                if self.complete:
                    return
                self._waiter = self._loop.create_future()
                await self._waiter
                self._waiter = None
        finally:
            self.close()

    def complete_body(self) -> bytes | None:
        """The whole body if it has already arrived (the usual small answer); else None."""
        if not self.complete or self._error is not None:
            return None
        body = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        return body

    async def read(self, limit: int) -> bytes | None:
        """The whole body; None once it exceeds `limit` bytes (the rest is not read)."""
        if self.complete and self._error is None:
            body = b"".join(self._chunks)
            self._chunks.clear()
            return body if len(body) <= limit else None
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > limit:
                return None
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Stop reading: an unfinished response closes its connection (it cannot be reused)."""
        self._fail(ConnectionError("response abandoned"))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's default verifying context, built once: loading the CA store takes ~20 ms."""
    return ssl.create_default_context()


class ConnectionPool:
    """Keep-alive connections to the origin of one URL."""

    def __init__(self, url: str, *, limit: int = 256, connect_timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.hostname}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = _tls_context() if parts.scheme == "https" else None
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = self.port == (443 if self._ssl else 80)
        self.host_header = host if default else f"{host}:{self.port}"
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._connect_timeout = connect_timeout
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        """Looked up on first use, not per request: each lookup is a system call on Python 3.11."""

    def request_head(self, method: str, headers: Iterable[tuple[str, str]]) -> bytes:
        """The request line and headers; HeaderInjection if a header holds CR, LF or NUL."""
        lines = [f"{method} {self.target} HTTP/1.1\r\nhost: {self.host_header}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers)
        head = "".join(lines)
        # Each line ends in exactly one CRLF, so any CR or LF inside a field shows in the counts
        # (cheaper than a scan of every field; this runs once per call).
        if head.count("\r") != len(lines) + 1 or head.count("\n") != len(lines) + 1 or "\0" in head:
            raise HeaderInjection
        try:
            return head.encode("latin-1")
        except UnicodeEncodeError:
            raise HeaderInjection from None

    async def _connection(self, reuse: bool = True) -> _Connection:
        while reuse and self._idle:
            connection = self._idle.pop()
            if (
                not connection.closed
                and connection.transport is not None
                and not connection.transport.is_closing()
            ):
                connection.reused = True
                return connection
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                _Connection,
                self.host,
                self.port,
                ssl=self._ssl,
                server_hostname=self.host if self._ssl else None,
            ),
            self._connect_timeout,
        )
        return protocol

    async def request(self, method: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> Response:
        """Send one request; the response once its status and headers have arrived."""
        if self._closed:
            raise ConnectionError("connection pool is closed")
        request = self.request_head(method, headers) + b"content-length: %d\r\n\r\n" % len(body) + body
        for attempt in (1, 2):
            await self._slots.acquire()
            try:
                connection = await self._connection(reuse=attempt == 1)
            except BaseException:
                self._slots.release()
                raise
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            response = Response(self, self._loop)
            connection.start(request, response)
            try:
                await response.head
            except ConnectionError:
                # A kept-alive connection the server closed while idle fails before any byte
                # of an answer arrives; the server never read the request, so send it again.
                if attempt == 1 and connection.reused and not connection.received:
                    continue
                raise
            except BaseException:
                response.close()
                raise
            return response
        raise AssertionError("unreachable")

    def _give_back(self, connection: _Connection, keep_alive: bool) -> None:
        self._slots.release()
        if keep_alive and not connection.closed and not self._closed:
            self._idle.append(connection)
        else:
            connection._close()

    def close(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection._close()
        self._idle.clear()
