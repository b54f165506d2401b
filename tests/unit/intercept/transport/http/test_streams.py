"""How answers reach the client: the request's own stream, SSE or one JSON body, and the upstream's status."""

from __future__ import annotations

import json

import httpx

from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.edge import ListenAddress
from intercept.transport.http.listener import HttpListener, ListenerOptions
from tests.unit.intercept.transport.http.listener_support import (
    BASE,
    SSE_ACCEPT,
    initialize,
    rpc,
    sse_messages,
)


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
