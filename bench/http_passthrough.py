"""The floor for any Python Streamable HTTP relay built on the proxy's libraries: uvicorn (httptools,
uvloop) in front, one aiohttp keep-alive session behind, and nothing else.

Each POST's body and its session/protocol headers go upstream; the upstream's status, content type,
session id and body come back whole. No checks, no parsing, no policy. Used by bench/http_latency.py
as a reference: the proxy cannot add less latency than this on the same machine.

    http_passthrough.py PORT UPSTREAM_URL [aiohttp|httptools]

The optional third argument picks the upstream client: aiohttp (the default) or the proxy's own
httptools-based keep-alive client (`intercept.transport.http.connection`), for an A/B of the two.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import uvicorn

from intercept.transport.http.connection import ConnectionPool

FORWARDED = (b"accept", b"content-type", b"mcp-session-id", b"mcp-protocol-version")
Message = MutableMapping[str, Any]


async def read_body(receive: Callable[[], Awaitable[Message]]) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def reply(
    send: Callable[[Message], Awaitable[None]], status: int, headers: Any, content: bytes
) -> None:
    """The upstream's status, content type, session id and body."""
    raw = [(b"content-type", headers.get("content-type", "").encode())]
    if "mcp-session-id" in headers:
        raw.append((b"mcp-session-id", headers["mcp-session-id"].encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


def relay_app(upstream: str) -> Callable[..., Awaitable[None]]:
    session: aiohttp.ClientSession | None = None

    async def app(
        scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        nonlocal session
        if scope["type"] != "http":
            return
        if session is None:
            session = aiohttp.ClientSession()
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k in FORWARDED}
        body = await read_body(receive)
        async with session.request(scope["method"], upstream, data=body, headers=headers) as response:
            content = await response.read()
            status, answer_headers = response.status, response.headers
        await reply(send, status, answer_headers, content)

    return app


def pooled_relay_app(upstream: str) -> Callable[..., Awaitable[None]]:
    pool: ConnectionPool | None = None

    async def app(
        scope: Message, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        nonlocal pool
        if scope["type"] != "http":
            return
        if pool is None:
            pool = ConnectionPool(upstream)
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"] if k in FORWARDED]
        body = await read_body(receive)
        response = await pool.request(scope["method"], headers, body)
        content = await response.read(1 << 30) or b""
        await reply(send, response.status, response.headers, content)

    return app


if __name__ == "__main__":
    port, upstream = int(sys.argv[1]), sys.argv[2]
    client = sys.argv[3] if len(sys.argv) > 3 else "aiohttp"
    uvicorn.run(
        pooled_relay_app(upstream) if client == "httptools" else relay_app(upstream),
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        interface="asgi3",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
