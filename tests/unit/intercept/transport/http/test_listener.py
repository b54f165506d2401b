"""The listener's request checks: bodies, content types, headers that must match the body, and the budget."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.edge import ListenAddress
from intercept.transport.http.limits import ListenerLimits
from intercept.transport.http.listener import HttpListener, ListenerOptions
from tests.unit.intercept.transport.http.listener_support import (
    BASE,
    SSE_ACCEPT,
    EchoSessions,
    initialize,
    make_listener,
    rpc,
    sse_messages,
    until,
)


async def test_notifications_are_accepted_with_202(client: httpx.AsyncClient, sessions: EchoSessions) -> None:
    sid = await initialize(client)
    note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    response = await client.post("/mcp", content=note, headers={**SSE_ACCEPT, "mcp-session-id": sid})
    assert response.status_code == 202
    for _ in range(100):
        if any(m.get("method") == "notifications/initialized" for _, m in sessions.seen):
            break
        await asyncio.sleep(0.01)
    assert (sid, json.loads(note)) in sessions.seen


async def test_an_mcp_name_header_that_disagrees_with_the_body_is_rejected(
    client: httpx.AsyncClient, sessions: EchoSessions
) -> None:
    sid = await initialize(client)
    headers = {**SSE_ACCEPT, "mcp-session-id": sid, "mcp-method": "tools/call", "mcp-name": "read_file"}
    response = await client.post("/mcp", content=rpc("tools/call", 4, name="delete_file"), headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32020
    headers["mcp-method"] = "tools/list"
    response = await client.post("/mcp", content=rpc("tools/call", 4, name="read_file"), headers=headers)
    assert response.status_code == 400
    assert not any(m.get("method") == "tools/call" for _, m in sessions.seen)
    headers["mcp-method"] = "tools/call"
    ok = await client.post("/mcp", content=rpc("tools/call", 4, name="read_file"), headers=headers)
    assert sse_messages(ok)[0]["id"] == 4


async def test_header_errors_name_the_header_never_its_value(
    client: httpx.AsyncClient, sessions: EchoSessions
) -> None:
    sid = await initialize(client)
    headers = {**SSE_ACCEPT, "mcp-session-id": sid, "mcp-method": "tools/call", "mcp-name": "s3cret-tool"}
    mismatch = await client.post("/mcp", content=rpc("tools/call", 4, name="other"), headers=headers)
    host = await client.post("/mcp", content=rpc("ping"), headers={**SSE_ACCEPT, "host": "s3cret.example:80"})
    for response in (mismatch, host):
        assert response.status_code in (400, 421)
        assert "s3cret" not in response.text
    assert "mcp-name" in mismatch.json()["error"]["message"]
    assert "Host" in host.json()["error"]["message"]


@pytest.mark.parametrize(
    ("version_header", "meta_version", "field"),
    [
        ("2025-06-18 s3cret", None, "MCP-Protocol-Version header"),
        ("s3cret", None, "MCP-Protocol-Version header"),
        (None, "2026-07-28\r\ns3cret", "params._meta"),
        (None, "9999-s3cret", "params._meta"),
    ],
)
async def test_a_protocol_version_that_is_not_a_revision_date_is_refused(
    sessions: EchoSessions, version_header: str | None, meta_version: str | None, field: str
) -> None:
    listener = make_listener(sessions, stateless=True)
    headers = dict(SSE_ACCEPT)
    if version_header is not None:
        headers["mcp-protocol-version"] = version_header
    params = (
        {} if meta_version is None else {"_meta": {"io.modelcontextprotocol/protocolVersion": meta_version}}
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        response = await c.post("/mcp", content=rpc("tools/list", 1, **params), headers=headers)
    await listener.shutdown()
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert field in message and "YYYY-MM-DD" in message and "s3cret" not in message
    assert sessions.seen == []


@pytest.mark.parametrize(
    "body",
    [b'{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}', b"\xff\xfe", b"{not json"],
)
async def test_malformed_bodies_never_reach_the_session(
    client: httpx.AsyncClient, sessions: EchoSessions, body: bytes
) -> None:
    sid = await initialize(client)
    response = await client.post("/mcp", content=body, headers={**SSE_ACCEPT, "mcp-session-id": sid})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700
    assert [m.get("method") for _, m in sessions.seen] == ["initialize"]


async def test_oversized_bodies_and_wrong_content_types_are_refused(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, max_message_bytes=100)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        big = rpc("initialize", 0, pad="x" * 200)
        assert (await c.post("/mcp", content=big, headers=SSE_ACCEPT)).status_code == 413
        text = {**SSE_ACCEPT, "content-type": "text/plain"}
        assert (await c.post("/mcp", content=rpc("initialize", 0), headers=text)).status_code == 415
    await listener.shutdown()
    assert sessions.seen == []


async def test_only_post_get_and_delete_on_slash_mcp_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.post("/other", content=rpc("initialize", 0), headers=SSE_ACCEPT)).status_code == 404
    put = await client.put("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)
    assert put.status_code == 405 and put.headers["allow"] == "POST, GET, DELETE"


async def test_messages_waiting_for_a_busy_router_hold_the_budget_until_taken() -> None:
    gate = asyncio.Event()

    async def slow_router(channel: ListenerChannel) -> None:
        await channel.receive()  # initialize
        answer = {"jsonrpc": "2.0", "id": 0, "result": {"method": "initialize"}}
        await channel.send(json.dumps(answer).encode())
        await gate.wait()
        while await channel.receive() is not None:
            pass

    message = {"jsonrpc": "2.0", "method": "notifications/x", "params": {"pad": "a" * 100}}
    note = json.dumps(message, separators=(",", ":")).encode()
    limits = ListenerLimits(max_buffered_bytes=2 * len(note))
    listener = HttpListener(ListenerOptions(ListenAddress("127.0.0.1", 8080), limits=limits), slow_router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        headers = {**SSE_ACCEPT, "mcp-session-id": await initialize(c)}
        assert listener.budget.used == 0
        for _ in range(2):
            assert (await c.post("/mcp", content=note, headers=headers)).status_code == 202
        assert listener.budget.used == 2 * len(note)
        refused = await c.post("/mcp", content=note, headers=headers)
        assert refused.status_code == 503 and "--max-buffered-bytes" in refused.json()["error"]["message"]
        gate.set()
        await until(lambda: listener.budget.used == 0)
    await listener.shutdown()
