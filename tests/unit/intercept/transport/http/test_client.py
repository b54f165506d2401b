"""HttpUpstream framing against a scripted fake server on 127.0.0.1.

Each fake server is a function from an `httpx.Request` to an `httpx.Response` (plain data here),
served over real HTTP by a small aiohttp application, so the upstream's real client is tested.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from intercept.protocol.mcp_headers import UnsafeHeader, decode_value, parse_header_option, request_headers
from intercept.transport.base import FrameTooLarge
from intercept.transport.http.client import HttpUpstream, display_url, env_proxy
from intercept.transport.http.connection import ConnectionPool
from intercept.transport.http.sse import decode_events, decode_stream, encode_event
from tests.conftest import free_port

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
_RUNNERS: list[web.AppRunner] = []


@pytest.fixture(autouse=True)
async def stop_fake_servers() -> AsyncIterator[None]:
    yield
    while _RUNNERS:
        await _RUNNERS.pop().cleanup()


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
    _RUNNERS.append(runner)
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


async def test_sse_responses_deliver_every_event_in_order() -> None:
    channel = await upstream(FakeServer(sse=True))
    await start_session(channel)
    await channel.send(dumps({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "x"}}))
    assert (await next_message(channel))["method"] == "notifications/progress"
    assert (await next_message(channel))["id"] == "a"
    await channel.close()


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


def test_request_headers_follow_the_2026_07_28_rules() -> None:
    assert request_headers({"method": "tools/call", "params": {"name": "echo"}}) == {
        "mcp-method": "tools/call",
        "mcp-name": "echo",
    }
    assert (
        request_headers({"method": "resources/read", "params": {"uri": "file:///a"}})["mcp-name"]
        == "file:///a"
    )
    assert request_headers({"method": "tools/list"}) == {"mcp-method": "tools/list"}
    assert request_headers({"id": 1, "result": {}}) == {}
    assert request_headers([{"method": "ping"}]) == {}
    wrapped = request_headers({"method": "tools/call", "params": {"name": "bad\nnamé"}})["mcp-name"]
    assert wrapped.startswith("=?base64?") and decode_value(wrapped) == "bad\nnamé"
    meta = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
    assert request_headers({"method": "tools/list", "params": meta})["mcp-protocol-version"] == "2026-07-28"


def test_header_option_parsing() -> None:
    assert parse_header_option("Authorization: Bearer abc") == ("Authorization", "Bearer abc")
    assert parse_header_option("X-Key:\ta\tb ") == ("X-Key", "a\tb")
    assert parse_header_option("X-Empty:") == ("X-Empty", "")


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ("no colon s3cret", "Name: value"),
        (": s3cret", "Name: value"),
        ("Bad Name: s3cret", "HTTP token"),
        ("X\r\nInjected: s3cret", "HTTP token"),
        ("Caf\u00e9: s3cret", "HTTP token"),
        ("X: s3cret\r\nInjected: 1", "control characters"),
        ("X: s3cret\n", "control characters"),
        ("X: s3\x00cret", "control characters"),
        ("X: s3cret\x1b[2J", "control characters"),
        ("X: s3cret\x7f", "control characters"),
        ("X: s3cr\u00e9t", "non-ASCII"),
        ("Host: s3cret", "sets this header itself"),
        ("Transfer-Encoding: s3cret", "sets this header itself"),
        ("MCP-Session-Id: s3cret", "sets this header itself"),
    ],
)
def test_header_options_that_could_break_a_request_are_refused_without_quoting_the_value(
    option: str, problem: str
) -> None:
    with pytest.raises(ValueError, match="--header") as refused:
        parse_header_option(option)
    assert problem in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_a_protocol_version_that_is_not_a_revision_date_never_becomes_a_header() -> None:
    for version in ("2026-07-28\r\nX: 1", "latest", "2026-07-28 ", "\u0662\u0660\u0662\u0666-07-28"):
        message = {
            "method": "tools/list",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": version}},
        }
        with pytest.raises(UnsafeHeader, match="YYYY-MM-DD") as refused:
            request_headers(message)
        assert version not in str(refused.value)


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


def test_display_url_drops_credentials_and_query() -> None:
    assert display_url("https://u:p@host:8443/mcp?key=s") == "https://host:8443/mcp"


async def test_sse_decoder_handles_multiline_data_comments_and_ids() -> None:
    async def lines(items: list[str]) -> Any:
        for item in items:
            yield item

    raw = [": comment", "id: 5", "data: a", "data: b", "", "event: other", "data: c", "", "id: 6", ""]
    events = [e async for e in decode_events(lines(raw), 100)]
    assert [(getattr(e, "data", None), getattr(e, "id", None)) for e in events] == [
        ("a\nb", "5"),
        ("c", None),
        ("", "6"),
    ]
    assert getattr(events[1], "event", None) == "other"


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


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
async def test_sse_stream_decoding_does_not_depend_on_where_chunks_split(size: int) -> None:
    raw = (
        'id: 1\r\ndata: {"t":"é\u2028"}\r\n\r\n: note\revent: other\rdata: a\rdata: b\r\rdata: tail'.encode()
    )
    events = [e async for e in decode_stream(chunks_of(raw, size), 100)]
    assert [
        (getattr(e, "data", None), getattr(e, "event", None), getattr(e, "id", None)) for e in events
    ] == [
        ('{"t":"é\u2028"}', "message", "1"),
        ("a\nb", "other", None),
        ("tail", "message", None),
    ]


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
async def test_lf_only_sse_streams_decode_the_same_wherever_chunks_split(size: int) -> None:
    # LF-only input takes the decoder's split-by-line path; its last chunk may end mid-line.
    raw = (
        'id: 7\ndata: {"t":"é\u2028"}\n\n: note\nevent: other\ndata: a\ndata: b\n\nid: 8\n\ndata: tail'
    ).encode()
    events = [e async for e in decode_stream(chunks_of(raw, size), 100)]
    assert [
        (getattr(e, "data", None), getattr(e, "event", None), getattr(e, "id", None)) for e in events
    ] == [
        ('{"t":"é\u2028"}', "message", "7"),
        ("a\nb", "other", None),
        ("", "message", "8"),
        ("tail", "message", None),
    ]


async def test_an_endless_sse_line_is_dropped_as_it_arrives_and_the_stream_goes_on() -> None:
    raw = b"data: " + b"x" * 10_000 + b"\n\ndata: ok\n\n"
    decoder_input = chunks_of(raw, 512)
    events = [e async for e in decode_stream(decoder_input, 1000)]
    assert isinstance(events[0], FrameTooLarge) and getattr(events[1], "data", None) == "ok"
    assert len(events) == 2


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
