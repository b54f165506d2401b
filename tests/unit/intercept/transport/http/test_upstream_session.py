"""The upstream session: re-initialization after a 404; what the server assigns unfit for a header."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.unit.intercept.transport.http.upstream_support import (
    INIT,
    FakeServer,
    dumps,
    init_result,
    next_message,
    start_session,
    upstream,
)


async def test_a_404_re_initializes_privately_and_retries_once() -> None:
    server = FakeServer()
    channel = await upstream(server)
    await start_session(channel)
    server.expired.add("s1")
    await channel.send(dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
    answer = await next_message(channel)
    assert answer["id"] == 9 and answer["result"]["session"] == "s2"
    inits = [json.loads(r.content) for r in server.requests if r.method == "POST"]
    assert [m["id"] for m in inits if m.get("method") == "initialize"] == [0, "intercept-reinitialize"]
    assert sum(1 for m in inits if m.get("method") == "notifications/initialized") == 2
    assert channel._inbox.empty()  # the private initialize result never reaches the client
    await channel.close()


class SlowReinitServer(FakeServer):
    """Takes its time over a re-initialization, so other requests' 404s arrive meanwhile."""

    def delay_for(self, body: bytes) -> float:
        return 0.2 if b"intercept-reinitialize" in body else 0.0


async def test_concurrent_requests_on_an_expired_session_share_one_re_initialization() -> None:
    server = SlowReinitServer()
    channel = await upstream(server)
    await start_session(channel)
    server.expired.add("s1")
    for request_id in range(10, 16):
        await channel.send(dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/list"}))
    answers = {}
    for _ in range(6):
        message = await next_message(channel)
        answers[message["id"]] = message
    assert sorted(answers) == list(range(10, 16))
    assert all(a["result"]["session"] == "s2" for a in answers.values()), answers
    inits = [json.loads(r.content) for r in server.requests if r.method == "POST"]
    assert [m["id"] for m in inits if m.get("method") == "initialize"] == [0, "intercept-reinitialize"]
    await channel.close()


async def test_an_initialize_answer_with_a_malformed_protocol_version_is_refused() -> None:
    server = FakeServer()
    evil = "2025-11-25\r\ncontent-length: 0\r\n\r\nGET /smuggled HTTP/1.1"

    def answer(request: httpx.Request) -> httpx.Response:
        reply = server(request)
        message = json.loads(request.content)
        if message.get("method") == "initialize":
            body = init_result(message["id"])
            body["result"]["protocolVersion"] = evil
            return httpx.Response(200, json=body, headers={"mcp-session-id": "s1"})
        return reply

    channel = await upstream(answer)
    await channel.send(dumps(INIT))
    refused = await next_message(channel)
    assert refused["id"] == 0 and "protocolVersion" in refused["error"]["message"]
    assert "smuggled" not in refused["error"]["message"]
    await channel.send(dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
    await next_message(channel)
    later = server.requests[-1]
    assert "mcp-protocol-version" not in later.headers and "mcp-session-id" not in later.headers
    await channel.close()


@pytest.mark.parametrize("session_id", ["s 1", "s\t1"])
async def test_a_session_id_that_is_not_visible_ascii_is_refused(session_id: str) -> None:
    server = FakeServer()

    def answer(request: httpx.Request) -> httpx.Response:
        reply = server(request)
        if json.loads(request.content).get("method") == "initialize":
            return httpx.Response(200, json=init_result(0), headers={"mcp-session-id": session_id})
        return reply

    channel = await upstream(answer)
    await channel.send(dumps(INIT))
    refused = await next_message(channel)
    assert "Mcp-Session-Id" in refused["error"]["message"] and "0x21-0x7E" in refused["error"]["message"]
    assert channel.session_id is None
    await channel.close()
