"""Stateless (2026-07-28) requests: each gets a one-shot session, only where they are served."""

from __future__ import annotations

import json

import httpx

from tests.unit.intercept.transport.http.listener_support import (
    BASE,
    SSE_ACCEPT,
    STATELESS_META,
    EchoSessions,
    make_listener,
    rpc,
    sse_messages,
)


async def test_stateless_requests_each_get_a_one_shot_session(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, stateless=True)
    headers = {**SSE_ACCEPT, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        first = await c.post("/mcp", content=rpc("tools/list", 1, **STATELESS_META), headers=headers)
        second = await c.post(
            "/mcp",
            content=rpc("tools/list", 1, **STATELESS_META),
            headers={**headers, "mcp-session-id": "stray"},
        )
        note = await c.post(
            "/mcp",
            content=json.dumps(
                {"jsonrpc": "2.0", "method": "notifications/x", "params": STATELESS_META}
            ).encode(),
            headers={**headers, "mcp-method": "notifications/x"},
        )
    await listener.shutdown()
    one, two = sse_messages(first)[0]["result"]["session"], sse_messages(second)[0]["result"]["session"]
    assert one != two
    assert "mcp-session-id" not in first.headers
    assert note.status_code == 202
    assert listener.sessions == {}


async def test_stateless_requests_are_refused_when_not_enabled(client: httpx.AsyncClient) -> None:
    headers = {**SSE_ACCEPT, "mcp-protocol-version": "2026-07-28"}
    response = await client.post("/mcp", content=rpc("tools/list", 1, **STATELESS_META), headers=headers)
    assert response.status_code == 400
