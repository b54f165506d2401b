"""The floor for any Python Streamable HTTP relay built on the proxy's libraries: uvicorn (httptools,
uvloop) in front, one aiohttp keep-alive session behind, and nothing else.

Each POST's body and its session/protocol headers go upstream; the upstream's status, content type,
session id and body come back whole. No checks, no parsing, no policy. Used by bench/http_latency.py
as a reference: the proxy cannot add less latency than this on the same machine.

    http_passthrough.py PORT UPSTREAM_URL
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import uvicorn

FORWARDED = (b"accept", b"content-type", b"mcp-session-id", b"mcp-protocol-version")
Message = MutableMapping[str, Any]


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
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        async with session.request(scope["method"], upstream, data=body, headers=headers) as response:
            content = await response.read()
            reply = [(b"content-type", response.headers.get("content-type", "").encode())]
            if "mcp-session-id" in response.headers:
                reply.append((b"mcp-session-id", response.headers["mcp-session-id"].encode()))
            status = response.status
        await send({"type": "http.response.start", "status": status, "headers": reply})
        await send({"type": "http.response.body", "body": content})

    return app


if __name__ == "__main__":
    port, upstream = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(
        relay_app(upstream),
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        interface="asgi3",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
