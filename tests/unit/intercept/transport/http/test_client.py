"""HttpUpstream against scripted fake servers: headers, errors for what cannot be delivered, the pool."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from intercept.transport.http.client import HttpUpstream, display_url, env_proxy
from intercept.transport.http.connection import ConnectionPool
from tests.conftest import free_port
from tests.unit.intercept.transport.http.upstream_support import (
    INIT,
    FakeServer,
    dumps,
    next_message,
    serve,
    start_session,
    upstream,
)


async def test_session_id_protocol_version_and_headers_are_sent_on_every_request() -> None:
    server = FakeServer()
    channel = await upstream(server)
    await start_session(channel)
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}
    await channel.send(dumps(call))
    answer = await next_message(channel)
    assert answer["id"] == 7 and answer["result"]["session"] == "s1"
    post = [r for r in server.requests if r.method == "POST"][-1]
    assert post.headers["authorization"] == "Bearer T"
    assert post.headers["mcp-session-id"] == "s1"
    assert post.headers["mcp-protocol-version"] == "2025-11-25"
    assert post.headers["mcp-method"] == "tools/call"
    assert post.headers["mcp-name"] == "echo"
    assert "text/event-stream" in post.headers["accept"]
    assert all(r.headers["authorization"] == "Bearer T" for r in server.requests)
    await channel.close()
    assert server.requests[-1].method == "DELETE"
    assert server.requests[-1].headers["mcp-session-id"] == "s1"
    assert await channel.receive() is None


async def test_an_unreachable_upstream_answers_each_request_with_an_error() -> None:
    channel = HttpUpstream(f"http://user:hunter2@127.0.0.1:{free_port()}/mcp?token=abc")
    await channel.send(dumps(INIT))
    error = await next_message(channel)
    assert error["id"] == 0 and error["error"]["code"] == -32000
    assert "unreachable" in error["error"]["message"]
    assert "hunter2" not in error["error"]["message"] and "abc" not in error["error"]["message"]
    await channel.close()


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b"oops"), (502, b"<html>bad gateway</html>"), (200, b"not json"), (200, b'{"unrelated": 1}')],
)
async def test_a_bad_http_answer_becomes_a_json_rpc_error(status: int, body: bytes) -> None:
    channel = await upstream(lambda request: httpx.Response(status, content=body))
    await channel.send(dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
    error = await next_message(channel)
    assert error["id"] == 3 and error["error"]["code"] == -32000
    await channel.close()


async def test_a_json_rpc_error_body_with_our_id_is_passed_through() -> None:
    body = {"jsonrpc": "2.0", "id": 3, "error": {"code": -32601, "message": "no such method"}}
    channel = await upstream(lambda request: httpx.Response(400, json=body))
    await channel.send(dumps({"jsonrpc": "2.0", "id": 3, "method": "nope"}))
    assert await next_message(channel) == body
    await channel.close()


@pytest.mark.parametrize(("status", "reported"), [(400, 400), (404, 404), (500, 500), (401, 502), (403, 502)])
async def test_an_error_status_is_reported_and_a_null_id_error_keeps_its_code_under_our_id(
    status: int, reported: int
) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Bad Request: nope", "data": 1},
    }
    statuses: list[tuple[Any, int]] = []
    channel = await upstream(
        lambda request: httpx.Response(status, json=body),
        on_error_status=lambda request_id, code: statuses.append((request_id, code)),
    )
    await channel.send(dumps({"jsonrpc": "2.0", "id": "r", "method": "ping"}))
    assert await next_message(channel) == {**body, "id": "r"}
    assert statuses == [("r", reported)]
    await channel.close()


async def test_an_oversized_json_response_is_an_error_not_a_crash() -> None:
    big = {"jsonrpc": "2.0", "id": 1, "result": {"text": "x" * 5000}}
    channel = await upstream(lambda request: httpx.Response(200, json=big), max_message_bytes=1000)
    await channel.send(dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a"}}))
    error = await next_message(channel)
    assert error["id"] == 1 and "size limit" in error["error"]["message"]
    await channel.close()


def test_display_url_drops_credentials_and_query() -> None:
    assert display_url("https://u:p@host:8443/mcp?key=s") == "https://host:8443/mcp"


async def test_a_server_without_sessions_gets_no_session_header_get_stream_or_delete() -> None:
    requests: list[httpx.Request] = []

    def stateless(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        message = json.loads(request.content)
        if "id" not in message:
            return httpx.Response(202)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": message["id"], "result": {}})

    channel = await upstream(stateless)
    await start_session(channel)
    await channel.send(dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}}))
    assert (await next_message(channel))["id"] == 1
    await channel.close()
    assert [r.method for r in requests] == ["POST", "POST", "POST"]
    assert all("mcp-session-id" not in r.headers for r in requests)
    assert requests[-1].headers["mcp-method"] == "tools/call" and requests[-1].headers["mcp-name"] == "echo"


def test_proxy_settings_come_from_the_environment_unless_no_proxy_exempts_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert env_proxy("https://remote.example/mcp") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://gateway.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert env_proxy("https://remote.example/mcp") == "http://gateway.example:3128"
    assert env_proxy("https://internal.example/mcp") is None
    assert env_proxy("http://remote.example/mcp") is None


async def test_requests_without_an_envelope_get_the_one_a_stateless_client_sent() -> None:
    bodies: list[Any] = []

    def record(request: httpx.Request) -> httpx.Response:
        message = json.loads(request.content)
        bodies.append((message, request.headers.get("mcp-protocol-version")))
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": message["id"], "result": {}})

    envelope = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    channel = await upstream(record)
    legacy = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    await channel.send(dumps(legacy))
    await next_message(channel)
    client_request = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/list",
        "params": {"_meta": {**envelope, "x": 1}},
    }
    channel.learn_envelope(dumps(client_request))
    await channel.send(dumps(client_request))
    await next_message(channel)
    own = {"jsonrpc": "2.0", "id": "intercept-1", "method": "tools/list", "params": {"cursor": "c2"}}
    await channel.send(dumps(own))
    await next_message(channel)
    await channel.close()
    assert bodies[0] == (legacy, None)
    assert bodies[1] == (client_request, "2026-07-28")
    assert bodies[2] == ({**own, "params": {"cursor": "c2", "_meta": envelope}}, "2026-07-28")


async def test_a_shared_connection_pool_outlives_the_channel() -> None:
    url = await serve(lambda request: httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {}}))
    pool = ConnectionPool(url)
    for _ in range(2):
        channel = HttpUpstream(url, pool=pool)
        await channel.send(dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        assert (await next_message(channel))["result"] == {}
        await channel.close()
    assert len(pool._idle) == 1  # both channels used, and left open, the same connection
    pool.close()
