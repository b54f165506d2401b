"""The upstream's event streams: SSE answers in order, oversized events, the GET stream, resumption."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from intercept.transport.base import FrameTooLarge
from intercept.transport.http.sse import encode_event
from tests.unit.intercept.transport.http.upstream_support import (
    FakeServer,
    dumps,
    next_message,
    start_session,
    upstream,
)


async def test_sse_responses_deliver_every_event_in_order() -> None:
    channel = await upstream(FakeServer(sse=True))
    await start_session(channel)
    await channel.send(dumps({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "x"}}))
    assert (await next_message(channel))["method"] == "notifications/progress"
    assert (await next_message(channel))["id"] == "a"
    await channel.close()


async def test_an_oversized_sse_event_raises_frame_too_large_then_continues() -> None:
    big = encode_event(b'{"jsonrpc":"2.0","method":"n","params":{"t":"' + b"x" * 5000 + b'"}}')
    ok = encode_event(b'{"jsonrpc":"2.0","id":1,"result":{}}')
    channel = await upstream(
        lambda request: httpx.Response(200, content=big + ok, headers={"content-type": "text/event-stream"}),
        max_message_bytes=1000,
    )
    await channel.send(dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
    with pytest.raises(FrameTooLarge):
        await asyncio.wait_for(channel.receive(), 5)
    assert (await next_message(channel)) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    await channel.close()


async def test_the_get_stream_delivers_server_initiated_messages() -> None:
    note = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
    server = FakeServer()
    gets: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            gets.append(request)
            if len(gets) == 1:
                body = encode_event(dumps(note), "g1")
                return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
            return httpx.Response(405)
        return server(request)

    channel = await upstream(handler)
    await start_session(channel)
    assert await next_message(channel) == note
    for _ in range(200):
        if len(gets) == 2:
            break
        await asyncio.sleep(0.01)
    assert gets[0].headers["mcp-session-id"] == "s1" and gets[0].headers["accept"] == "text/event-stream"
    assert gets[1].headers["last-event-id"] == "g1"  # the dropped stream is resumed where it stopped
    await channel.close()


async def test_a_post_stream_that_ends_early_is_resumed_with_last_event_id() -> None:
    server = FakeServer()
    answer = {"jsonrpc": "2.0", "id": 5, "result": {"ok": True}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and json.loads(request.content).get("id") == 5:
            priming = b"id: p1\ndata: \n\n"  # the server closes the stream before answering
            return httpx.Response(200, content=priming, headers={"content-type": "text/event-stream"})
        if request.method == "GET" and request.headers.get("last-event-id") == "p1":
            return httpx.Response(
                200, content=encode_event(dumps(answer), "p2"), headers={"content-type": "text/event-stream"}
            )
        return server(request)

    channel = await upstream(handler)
    await start_session(channel)
    await channel.send(dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "slow"}}))
    assert await next_message(channel) == answer
    await channel.close()


async def test_sse_line_endings_crlf_and_cr_and_a_raw_line_separator_in_json() -> None:
    answer = {"jsonrpc": "2.0", "id": 4, "result": {"text": "a\u2028b"}}
    note = {"jsonrpc": "2.0", "method": "notifications/message", "params": {}}
    body = (
        b"event: message\r\ndata: " + dumps(note) + b"\r\n\r\n"
        b"event: message\rdata: " + json.dumps(answer, ensure_ascii=False).encode() + b"\r\r"
    )
    channel = await upstream(
        lambda request: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    )
    await channel.send(dumps({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "x"}}))
    assert await next_message(channel) == note
    assert await next_message(channel) == answer
    await channel.close()
