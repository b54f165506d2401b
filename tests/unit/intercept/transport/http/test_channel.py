"""A session's channel: what it holds of the byte budget, and the resumption of its streams."""

from __future__ import annotations

import json

import pytest

from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.event_log import UnknownStream, parse_event_id
from intercept.transport.http.limits import ByteBudget
from intercept.transport.http.mailbox import Mailbox


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


def message(request_id: int | None = None, method: str | None = None) -> bytes:
    body: dict[str, object] = {"jsonrpc": "2.0"}
    if method is not None:
        body["method"] = method
        body["params"] = {"progressToken": "t"}
    if request_id is not None:
        body["id"] = request_id
        body["result"] = {}
    return json.dumps(body).encode()


def ids_and_data(events: list[bytes] | list[bytes | None]) -> list[tuple[str, str]]:
    out = []
    for event in events:
        assert event is not None
        lines = event.decode().splitlines()
        out.append((lines[0].removeprefix("id: "), lines[2].removeprefix("data: ")))
    return out


def drain(queue: Mailbox[bytes | None]) -> list[bytes | None]:
    items: list[bytes | None] = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def test_a_detached_post_stream_keeps_its_events_and_resumes_after_the_last_id() -> None:
    channel = ListenerChannel("s")
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"_meta": {"progressToken": "t"}}}
    exchange = channel.submit(json.dumps(request).encode(), [request])
    assert exchange is not None and exchange.number is not None
    await channel.send(message(method="notifications/progress"))
    first = exchange.queue.get_nowait()
    assert first is not None
    seen_id = first.decode().splitlines()[0].removeprefix("id: ")
    channel.detach(exchange, exchange.queue)
    await channel.send(message(method="notifications/progress"))
    await channel.send(message(request_id=1))
    stream_number, seq = parse_event_id(seen_id) or (0, 0)
    resumed = channel.resume(stream_number, seq)
    events = drain(resumed.queue)
    assert events[-1] is None
    replayed = ids_and_data([e for e in events if e])
    assert [i for i, _ in replayed] == [f"{stream_number}-2", f"{stream_number}-3"]
    assert json.loads(replayed[-1][1])["id"] == 1
    other = ListenerChannel("t")
    with pytest.raises(UnknownStream):
        other.resume(stream_number, 0)


async def test_a_resumed_live_stream_goes_on_and_ends_the_old_reader() -> None:
    channel = ListenerChannel("s")
    request = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"_meta": {"progressToken": "t"}}}
    exchange = channel.submit(json.dumps(request).encode(), [request])
    assert exchange is not None and exchange.number is not None
    old_queue = exchange.queue
    await channel.send(message(method="notifications/progress"))
    resumed = channel.resume(exchange.number, 0)
    assert resumed is exchange and drain(old_queue)[-1] is None
    channel.detach(exchange, old_queue)  # the old reader's clean-up must not detach the new one
    await channel.send(message(request_id=7))
    events = drain(resumed.queue)
    assert [i for i, _ in ids_and_data([e for e in events if e])] == [
        f"{exchange.number}-1",
        f"{exchange.number}-2",
    ]
    assert events[-1] is None


async def test_the_get_stream_resumes_with_what_arrived_while_no_client_read_it() -> None:
    channel = ListenerChannel("s")
    stream = channel.open_get_stream()
    assert stream is not None and stream.number is not None and channel.open_get_stream() is None
    await channel.send(message(method="notifications/message"))
    channel.detach(stream, stream.queue)
    await channel.send(message(method="notifications/message"))
    resumed = channel.resume(stream.number, 1)
    events = drain(resumed.queue)
    assert [i for i, _ in ids_and_data(events)] == [f"{stream.number}-2"]
