"""The Streamable HTTP listener's checks, sessions and routing, with a fake session runner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from intercept.transport.http.limits import ByteBudget, ListenerLimits
from intercept.transport.http.listener import (
    HttpListener,
    ListenAddress,
    ListenerChannel,
    ListenerOptions,
    parse_listen,
)

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


@pytest.fixture
def sessions() -> EchoSessions:
    return EchoSessions()


def make_listener(sessions: EchoSessions, **options: Any) -> HttpListener:
    return HttpListener(ListenerOptions(ListenAddress("127.0.0.1", 8080), **options), sessions)


@pytest.fixture
async def client(sessions: EchoSessions) -> AsyncIterator[httpx.AsyncClient]:
    listener = make_listener(sessions, client_token=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        yield c
    await listener.shutdown()


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


async def test_server_messages_during_a_request_reach_that_requests_stream(client: httpx.AsyncClient) -> None:
    sid = await initialize(client)
    response = await client.post(
        "/mcp", content=rpc("tools/call", 3, name="notify"), headers={**SSE_ACCEPT, "mcp-session-id": sid}
    )
    messages = sse_messages(response)
    assert [m.get("method") for m in messages] == ["notifications/message", None]
    assert messages[1]["id"] == 3


async def test_json_answer_when_the_client_does_not_accept_sse(client: httpx.AsyncClient) -> None:
    sid = await initialize(client)
    headers = {"accept": "application/json", "content-type": "application/json", "mcp-session-id": sid}
    response = await client.post("/mcp", content=rpc("ping", "p"), headers=headers)
    assert response.headers["content-type"] == "application/json"
    assert response.json()["id"] == "p"


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


async def test_delete_ends_the_session(client: httpx.AsyncClient) -> None:
    sid = await initialize(client)
    assert (await client.delete("/mcp", headers={"mcp-session-id": sid})).status_code == 200
    after = await client.post("/mcp", content=rpc("ping"), headers={**SSE_ACCEPT, "mcp-session-id": sid})
    assert after.status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example:8080"}, 421),
        ({"host": "127.0.0.1:9999"}, 421),
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "http://attacker.127.0.0.1.nip.io:8080"}, 403),
        ({"origin": "http://localhost:3000"}, 200),
        ({"origin": "http://127.0.0.1:8080", "host": "localhost:8080"}, 200),
    ],
)
async def test_host_and_origin_are_validated(
    client: httpx.AsyncClient, sessions: EchoSessions, headers: dict[str, str], status: int
) -> None:
    response = await client.post("/mcp", content=rpc("initialize", 0), headers={**SSE_ACCEPT, **headers})
    assert response.status_code == status
    assert len(sessions.seen) == (1 if status == 200 else 0)


async def test_allowed_hosts_and_origins_extend_the_defaults(sessions: EchoSessions) -> None:
    listener = make_listener(
        sessions, allowed_hosts=("mcp.internal:8080",), allowed_origins=("https://app.example",)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        headers = {**SSE_ACCEPT, "host": "mcp.internal:8080", "origin": "https://app.example"}
        assert (await c.post("/mcp", content=rpc("initialize", 0), headers=headers)).status_code == 200
    await listener.shutdown()


async def test_a_client_token_is_required_when_configured(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, client_token="s3cret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        missing = await c.post("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)
        wrong = await c.post(
            "/mcp", content=rpc("initialize", 0), headers={**SSE_ACCEPT, "authorization": "Bearer x"}
        )
        right = await c.post(
            "/mcp", content=rpc("initialize", 0), headers={**SSE_ACCEPT, "authorization": "Bearer s3cret"}
        )
    await listener.shutdown()
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert len(sessions.seen) == 1


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


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8080") == ListenAddress("127.0.0.1", 8080)
    assert parse_listen("[::1]:9000") == ListenAddress("::1", 9000)
    assert parse_listen(":7000") == ListenAddress("127.0.0.1", 7000)
    assert parse_listen("localhost:1").is_loopback
    assert not parse_listen("0.0.0.0:80").is_loopback
    for bad in ("8080", "host:", "host:99999", "host:port"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


STATELESS_META = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}


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


async def test_only_post_get_and_delete_on_slash_mcp_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.post("/other", content=rpc("initialize", 0), headers=SSE_ACCEPT)).status_code == 404
    put = await client.put("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)
    assert put.status_code == 405 and put.headers["allow"] == "POST, GET, DELETE"


async def test_a_json_only_client_gets_one_json_body(client: httpx.AsyncClient) -> None:
    headers = {"accept": "application/json", "content-type": "application/json"}
    response = await client.post("/mcp", content=rpc("initialize", 0), headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json()["result"]["method"] == "initialize" and "mcp-session-id" in response.headers


async def test_an_upstream_error_status_noted_for_a_request_is_the_answers_status() -> None:
    async def refusing(channel: ListenerChannel) -> None:
        while (raw := await channel.receive()) is not None:
            message = json.loads(raw)
            if message.get("method") == "initialize":
                answer = {"jsonrpc": "2.0", "id": message["id"], "result": {}}
            else:
                channel.note_status(message["id"], 404)
                answer = {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no"}}
            await channel.send(json.dumps(answer).encode())

    listener = HttpListener(ListenerOptions(ListenAddress("127.0.0.1", 8080)), refusing)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        sid = (await c.post("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)).headers[
            "mcp-session-id"
        ]
        over_sse = await c.post("/mcp", content=rpc("x/y", 1), headers={**SSE_ACCEPT, "mcp-session-id": sid})
        json_only = {"accept": "application/json", "content-type": "application/json", "mcp-session-id": sid}
        over_json = await c.post("/mcp", content=rpc("x/y", 2), headers=json_only)
    await listener.shutdown()
    for response, request_id in ((over_sse, 1), (over_json, 2)):
        assert response.status_code == 404 and response.headers["content-type"] == "application/json"
        assert response.json() == {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": -32601, "message": "no"},
        }


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


# -- session limits ---------------------------------------------------------------------------


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def test_initialize_beyond_max_sessions_gets_503_naming_the_option(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, limits=ListenerLimits(max_sessions=1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        sid = await initialize(c)
        refused = await c.post("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)
        assert refused.status_code == 503 and "mcp-session-id" not in refused.headers
        assert "at most 1" in refused.json()["error"]["message"]
        assert "--max-sessions" in refused.json()["error"]["message"]
        await c.delete("/mcp", headers={"mcp-session-id": sid})
        await until(lambda: not listener._tasks)  # the ended session's runner is gone
        assert await initialize(c) != sid
    await listener.shutdown()


async def test_an_idle_session_ends_and_then_gets_404(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, limits=ListenerLimits(max_sessions=1, session_idle_timeout=0.1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        sid = await initialize(c)
        await until(lambda: not listener._tasks)  # expired, and its runner has ended
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


async def test_closing_a_session_gives_back_what_its_queue_held() -> None:
    budget = ByteBudget(100)
    channel = ListenerChannel("s", budget=budget)
    assert budget.take(10)
    channel.submit(b"0123456789", [], charge=10)
    assert budget.used == 10
    await channel.close()
    assert budget.used == 0 and await channel.receive() is None


async def test_a_closed_session_drops_what_the_router_sends_instead_of_failing() -> None:
    channel = ListenerChannel("s")
    await channel.close()
    await channel.send(b'{"jsonrpc":"2.0","id":1,"result":{}}')
    assert await channel.receive() is None
