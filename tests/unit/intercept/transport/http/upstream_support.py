"""Helpers for the upstream client's tests: scripted fake servers on 127.0.0.1.

Each fake server is a function from an `httpx.Request` to an `httpx.Response` (plain data here),
served over real HTTP by a small aiohttp application, so the upstream's real client is tested."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
from aiohttp import web

from intercept.transport.http.client import HttpUpstream
from intercept.transport.http.sse import encode_event

INIT = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}


INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def dumps(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def init_result(request_id: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "result": {"protocolVersion": "2025-11-25", "capabilities": {}},
    }


class FakeServer:
    """Records requests; answers initialize with a session, tools/call with JSON or SSE."""

    def __init__(self, sse: bool = False) -> None:
        self.sse = sse
        self.requests: list[httpx.Request] = []
        self.sessions = 0
        self.expired: set[str] = set()

    def session(self) -> str:
        return f"s{self.sessions}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET":
            return httpx.Response(405)
        if request.method == "DELETE":
            return httpx.Response(200)
        message = json.loads(request.content)
        sid = request.headers.get("mcp-session-id")
        if message.get("method") == "initialize":
            self.sessions += 1
            return httpx.Response(
                200, json=init_result(message["id"]), headers={"mcp-session-id": self.session()}
            )
        if sid in self.expired:
            return httpx.Response(404)
        if "id" not in message:
            return httpx.Response(202)
        result = {"jsonrpc": "2.0", "id": message["id"], "result": {"content": [], "session": sid}}
        if self.sse:
            progress = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}
            body = encode_event(dumps(progress), "e1") + encode_event(dumps(result), "e2")
            return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=result)


Handler = Callable[[httpx.Request], httpx.Response]


RUNNERS: list[web.AppRunner] = []


async def serve(handler: Handler) -> str:
    """Serve `handler` at http://127.0.0.1:<some port>/mcp; the URL."""

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        delay_for = getattr(handler, "delay_for", None)
        if delay_for is not None:
            await asyncio.sleep(delay_for(body))
        asked = httpx.Request(
            request.method, str(request.url), headers=list(request.headers.items()), content=body
        )
        reply = handler(asked)
        headers = {k: v for k, v in reply.headers.items() if k not in ("content-length", "transfer-encoding")}
        return web.Response(status=reply.status_code, body=reply.content, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/mcp", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    RUNNERS.append(runner)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}/mcp"


async def upstream(handler: Handler, **kwargs: Any) -> HttpUpstream:
    url = await serve(handler)
    return HttpUpstream(url, kwargs.pop("headers", {"Authorization": "Bearer T"}), **kwargs)


async def next_message(channel: HttpUpstream) -> Any:
    data = await asyncio.wait_for(channel.receive(), 5)
    assert data is not None
    return json.loads(data)


async def start_session(channel: HttpUpstream) -> None:
    await channel.send(dumps(INIT))
    assert (await next_message(channel))["id"] == 0
    await channel.send(dumps(INITIALIZED))
    while channel._tasks:  # let the notification's POST finish before the test goes on
        await asyncio.sleep(0.01)
