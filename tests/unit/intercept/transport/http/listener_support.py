"""Helpers for the listener's tests: a session runner that echoes, and a listener on a fixed address."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.edge import ListenAddress
from intercept.transport.http.listener import HttpListener, ListenerOptions

BASE = "http://127.0.0.1:8080"


SSE_ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class EchoSessions:
    """Answers each request with its method and the session it arrived on; records everything."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    async def __call__(self, channel: ListenerChannel) -> None:
        while (raw := await channel.receive()) is not None:
            message = json.loads(raw)
            self.seen.append((channel.session_id, message))
            if not isinstance(message, dict) or "id" not in message:
                continue
            if message.get("params", {}).get("name") == "notify":
                await channel.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/message"}).encode())
            result = {"method": message["method"], "session": channel.session_id}
            await channel.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode())


def make_listener(sessions: EchoSessions, **options: Any) -> HttpListener:
    return HttpListener(ListenerOptions(ListenAddress("127.0.0.1", 8080), **options), sessions)


def sse_messages(response: httpx.Response) -> list[Any]:
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


def rpc(method: str, request_id: Any = 1, **params: Any) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params:
        message["params"] = params
    return json.dumps(message).encode()


async def initialize(client: httpx.AsyncClient) -> str:
    response = await client.post("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sse_messages(response)[0]["result"]["method"] == "initialize"
    return response.headers["mcp-session-id"]


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


STATELESS_META = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
