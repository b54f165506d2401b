"""The listener's limits on connections, request time and buffered bytes, over real loopback sockets.

Each test serves an `HttpListener` with uvicorn on 127.0.0.1 (as `intercept run --listen` does)
with small limits, and plays a slow, idle or greedy client with raw sockets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.edge import ListenAddress
from intercept.transport.http.limits import (
    MAX_HEADER_BYTES,
    UNCHARGED_BODY_BYTES,
    ByteBudget,
    ClientGone,
    ListenerLimits,
    Refused,
    read_body,
)
from intercept.transport.http.listener import HttpListener, ListenerOptions
from intercept.transport.http.serve import serve
from tests.conftest import free_port

SSE_ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}).encode()


class Sessions:
    """Answers every request except a tools/call, which it only records (an answer that never comes)."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    async def __call__(self, channel: ListenerChannel) -> None:
        while (raw := await channel.receive()) is not None:
            message = json.loads(raw)
            if message.get("method") == "tools/call":
                self.calls.append(message["id"])
            elif "id" in message:
                await channel.send(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {}}).encode())


@asynccontextmanager
async def served(
    max_message_bytes: int = 1 << 20, runner: Sessions | None = None, **limits: Any
) -> AsyncIterator[HttpListener]:
    port = free_port()
    options = ListenerOptions(
        ListenAddress("127.0.0.1", port), max_message_bytes=max_message_bytes, limits=ListenerLimits(**limits)
    )
    listener = HttpListener(options, runner or Sessions())
    started, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(listener, started, stop))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield listener
    finally:
        stop.set()
        await task


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


def port_of(listener: HttpListener) -> int:
    return listener.options.address.port


async def connect(listener: HttpListener) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port_of(listener))


def head(listener: HttpListener, length: int, content_type: str = "application/json", sid: str = "") -> bytes:
    session = f"mcp-session-id: {sid}\r\n" if sid else ""
    return (
        f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port_of(listener)}\r\ncontent-type: {content_type}\r\n"
        f"accept: application/json\r\ncontent-length: {length}\r\n{session}\r\n"
    ).encode()


async def answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the listener sends until it closes the connection."""
    async with asyncio.timeout(10):
        return await reader.read()


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def test_headers_trickled_past_the_deadline_get_408_and_the_connection_closes() -> None:
    async with served(header_timeout=0.2) as listener:
        reader, writer = await connect(listener)
        writer.write(b"GET /mcp HTTP/1.1\r\n")
        closed = asyncio.create_task(answer(reader))
        while not closed.done():
            writer.write(b"x")  # one byte at a time, never the end of the headers
            await asyncio.sleep(0.02)
        response = closed.result()
        assert status(response) == 408 and b"connection: close" in response
        assert listener.guard.open == set()
        writer.close()


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline() -> None:
    async with served(header_timeout=0.1) as listener:
        reader, writer = await connect(listener)
        assert status(await answer(reader)) == 408
        writer.close()


async def test_oversized_headers_get_431() -> None:
    async with served() as listener:
        reader, writer = await connect(listener)
        writer.write(b"GET /mcp HTTP/1.1\r\nx-filler: " + b"a" * (MAX_HEADER_BYTES + 1))
        assert status(await answer(reader)) == 431
        writer.close()


async def test_a_kept_alive_connection_may_idle_between_requests_longer_than_the_header_deadline() -> None:
    async with served(header_timeout=0.1) as listener:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_of(listener)}") as client:
            first = await client.post("/mcp", content=INITIALIZE, headers=SSE_ACCEPT)
            await asyncio.sleep(0.5)  # idle on the kept-alive connection: uvicorn's keep-alive applies
            second = await client.post("/mcp", content=INITIALIZE, headers=SSE_ACCEPT)
        assert first.status_code == second.status_code == 200
        assert len(listener.guard.open) <= 1


async def test_a_body_not_finished_in_time_gets_408_and_its_bytes_are_freed() -> None:
    async with served(body_timeout=0.2, max_buffered_bytes=1 << 20) as listener:
        reader, writer = await connect(listener)
        writer.write(head(listener, 500_000) + b" " * 300_000)
        await until(lambda: listener.budget.used > 0)
        response = await answer(reader)
        assert status(response) == 408 and b"body did not arrive in time" in response
        await until(lambda: listener.budget.used == 0)
        writer.close()


async def test_a_body_refused_unread_is_still_cut_off_at_the_body_deadline() -> None:
    async with served(body_timeout=0.2) as listener:
        reader, writer = await connect(listener)
        writer.write(head(listener, 100, content_type="text/plain") + b"x")
        response = await answer(reader)  # the 415 comes at once; the connection ends at the deadline
        assert status(response) == 415 and response.count(b"HTTP/1.1") == 1
        writer.close()


async def test_a_declared_length_over_the_message_limit_is_refused_before_the_body_is_read() -> None:
    async with served(max_message_bytes=1024, body_timeout=0.2) as listener:
        reader, writer = await connect(listener)
        writer.write(head(listener, 5000))
        response = await answer(reader)  # then the connection ends at the body deadline
        assert status(response) == 413 and b"5000 bytes exceeds the 1024-byte limit" in response
        writer.close()


async def test_bodies_beyond_the_shared_budget_get_503_while_small_requests_pass() -> None:
    async with served(max_buffered_bytes=200_000, body_timeout=30) as listener:
        holder_reader, holder = await connect(listener)
        holder.write(head(listener, 500_000) + b" " * 200_000)
        await until(lambda: listener.budget.used == 200_000 - UNCHARGED_BODY_BYTES)
        greedy_reader, greedy = await connect(listener)
        greedy.write(head(listener, 500_000) + b" " * 200_000)
        async with asyncio.timeout(10):
            response = await greedy_reader.readuntil(b"--max-buffered-bytes 200000")
        assert status(response) == 503
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_of(listener)}") as client:
            small = await client.post("/mcp", content=INITIALIZE, headers=SSE_ACCEPT)
        assert small.status_code == 200
        holder.close()  # the held body is given back when its client leaves
        await until(lambda: listener.budget.used == 0)
        greedy.close()
        del holder_reader


async def test_a_new_connection_displaces_the_longest_wait_for_headers() -> None:
    async with served(max_connections=2, header_timeout=60) as listener:
        idle_reader, idle = await connect(listener)
        await until(lambda: len(listener.guard.open) == 1)
        _, slow = await connect(listener)
        slow.write(b"GET /mc")
        await until(lambda: len(listener.guard.headers) == 2)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_of(listener)}") as client:
            served_ok = await client.post("/mcp", content=INITIALIZE, headers=SSE_ACCEPT)
        assert served_ok.status_code == 200
        assert status(await answer(idle_reader)) == 503  # the oldest wait, not the newer slow one
        idle.close()
        slow.close()


async def test_a_new_connection_gets_503_when_no_connection_waits_for_headers() -> None:
    async with served(max_connections=1, body_timeout=60) as listener:
        _, busy = await connect(listener)
        busy.write(head(listener, 100) + b"{")  # in its body: not displaced
        await until(lambda: len(listener.guard.bodies) == 1)
        reader, writer = await connect(listener)
        response = await answer(reader)
        assert status(response) == 503 and b"too many connections" in response
        busy.close()
        writer.close()


async def test_a_client_that_leaves_while_its_call_waits_frees_its_session() -> None:
    runner = Sessions()
    async with served(runner=runner) as listener:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_of(listener)}") as client:
            sid = (await client.post("/mcp", content=INITIALIZE, headers=SSE_ACCEPT)).headers[
                "mcp-session-id"
            ]
        session = listener.sessions[sid]
        call = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "x"}})
        reader, writer = await connect(listener)
        writer.write(head(listener, len(call), sid=sid) + call.encode())
        await until(session.busy)
        writer.close()
        await until(lambda: not session.busy())  # the wait for the answer ended with its client
        assert runner.calls == [7]
        del reader


# -- read_body and ByteBudget, without a server ---------------------------------------------


def chunks(*parts: bytes | None) -> Callable[[], Awaitable[MutableMapping[str, Any]]]:
    """A `receive` that yields these body parts (None: the client disconnects)."""
    queue = list(parts)

    async def receive() -> MutableMapping[str, Any]:
        part = queue.pop(0)
        if part is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": part, "more_body": bool(queue)}

    return receive


async def test_read_body_charges_what_exceeds_the_uncharged_part_and_gives_it_back() -> None:
    budget = ByteBudget(1 << 20)
    part = b"a" * UNCHARGED_BODY_BYTES
    assert await read_body(chunks(part, b"bb"), None, 1 << 20, budget) == part + b"bb"
    assert budget.used == 0
    with pytest.raises(ClientGone):
        await read_body(chunks(part, b"bb", None), None, 1 << 20, budget)
    assert budget.used == 0


async def test_read_body_refuses_over_the_limit_or_the_budget() -> None:
    budget = ByteBudget(10)
    with pytest.raises(Refused) as declared:
        await read_body(chunks(), "2000", 1000, budget)  # nothing is read
    assert declared.value.status == 413
    with pytest.raises(Refused) as too_large:
        await read_body(chunks(b"a" * 600, b"a" * 600), None, 1000, budget)
    assert too_large.value.status == 413
    with pytest.raises(Refused) as over_budget:
        await read_body(chunks(b"a" * (UNCHARGED_BODY_BYTES + 11)), None, 1 << 20, budget)
    assert over_budget.value.status == 503 and "--max-buffered-bytes 10" in over_budget.value.message
    assert budget.used == 0
