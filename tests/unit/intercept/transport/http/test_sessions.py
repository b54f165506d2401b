"""The listener's sessions: opened at initialize, isolated, ended by DELETE, capped, and expired when idle."""

from __future__ import annotations

import asyncio
import json

import httpx

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


async def test_initialize_opens_a_session_and_later_requests_use_it(client: httpx.AsyncClient) -> None:
    sid = await initialize(client)
    assert len(sid) >= 32
    response = await client.post(
        "/mcp", content=rpc("tools/list", 2), headers={**SSE_ACCEPT, "mcp-session-id": sid}
    )
    assert sse_messages(response) == [
        {"jsonrpc": "2.0", "id": 2, "result": {"method": "tools/list", "session": sid}}
    ]


async def test_requests_without_or_with_an_unknown_session_are_refused(
    client: httpx.AsyncClient, sessions: EchoSessions
) -> None:
    assert (await client.post("/mcp", content=rpc("tools/list"), headers=SSE_ACCEPT)).status_code == 400
    unknown = {**SSE_ACCEPT, "mcp-session-id": "nope"}
    assert (await client.post("/mcp", content=rpc("tools/list"), headers=unknown)).status_code == 404
    assert sessions.seen == []


async def test_sessions_are_isolated_even_when_ids_collide(client: httpx.AsyncClient) -> None:
    first, second = await initialize(client), await initialize(client)
    assert first != second
    answers = await asyncio.gather(
        *(
            client.post(
                "/mcp", content=rpc("ping", 5 + i // 2), headers={**SSE_ACCEPT, "mcp-session-id": sid}
            )
            for i, sid in enumerate((first, second, first, second))
        )
    )
    assert [sse_messages(a)[0]["result"]["session"] for a in answers] == [first, second, first, second]
    assert [sse_messages(a)[0]["id"] for a in answers] == [5, 5, 6, 6]


async def test_delete_ends_the_session(client: httpx.AsyncClient) -> None:
    sid = await initialize(client)
    assert (await client.delete("/mcp", headers={"mcp-session-id": sid})).status_code == 200
    after = await client.post("/mcp", content=rpc("ping"), headers={**SSE_ACCEPT, "mcp-session-id": sid})
    assert after.status_code == 404


async def test_shutdown_lets_ended_sessions_close_their_upstreams() -> None:
    cleaned: list[str] = []

    async def slow_to_close(channel: ListenerChannel) -> None:
        while (raw := await channel.receive()) is not None:
            message = json.loads(raw)
            await channel.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {}}).encode())
        await asyncio.sleep(0.05)  # e.g. the upstream's DELETE
        cleaned.append(channel.session_id)

    listener = HttpListener(ListenerOptions(ListenAddress("127.0.0.1", 8080)), slow_to_close)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        sid = (await c.post("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)).headers[
            "mcp-session-id"
        ]
    await listener.shutdown()
    assert cleaned == [sid]


async def test_initialize_beyond_max_sessions_gets_503_naming_the_option(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, limits=ListenerLimits(max_sessions=1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        sid = await initialize(c)
        refused = await c.post("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)
        assert refused.status_code == 503 and "mcp-session-id" not in refused.headers
        assert "at most 1" in refused.json()["error"]["message"]
        assert "--max-sessions" in refused.json()["error"]["message"]
        await c.delete("/mcp", headers={"mcp-session-id": sid})
        await until(lambda: listener.table.runners == 0)  # the ended session's runner is gone
        assert await initialize(c) != sid
    await listener.shutdown()


async def test_an_idle_session_ends_and_then_gets_404(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, limits=ListenerLimits(max_sessions=1, session_idle_timeout=0.1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        sid = await initialize(c)
        await until(lambda: listener.table.runners == 0)  # expired, and its runner has ended
        expired = await c.post("/mcp", content=rpc("ping", 2), headers={**SSE_ACCEPT, "mcp-session-id": sid})
        assert expired.status_code == 404
        assert await initialize(c) != sid  # its place is free again
    await listener.shutdown()


async def test_a_session_whose_stream_a_client_reads_does_not_expire(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, limits=ListenerLimits(session_idle_timeout=0.1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        read, idle = await initialize(c), await initialize(c)
        stream = listener.sessions[read].open_get_stream()
        assert stream is not None and listener.sessions[read].busy()
        await until(lambda: idle not in listener.sessions)  # the later session expired first
        assert read in listener.sessions
        listener.sessions[read].detach(stream, stream.queue)  # its reader leaves
        await until(lambda: read not in listener.sessions)
    await listener.shutdown()
