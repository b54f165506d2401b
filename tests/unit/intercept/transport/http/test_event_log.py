"""The listener's bounded SSE replay log and the resumption of a session's streams."""

from __future__ import annotations

import json

import pytest

from intercept.transport.http.event_log import EventLog, EventsLost, UnknownStream, parse_event_id
from intercept.transport.http.listener import ListenerChannel
from intercept.transport.http.mailbox import Mailbox


def test_replay_returns_only_that_streams_later_events() -> None:
    log = EventLog()
    log.open_stream(1)
    log.open_stream(2)
    for seq in (1, 2, 3):
        log.append(1, seq, f"one-{seq}".encode())
        log.append(2, seq, f"two-{seq}".encode())
    assert log.replay(1, 1) == [b"one-2", b"one-3"]
    assert log.replay(2, 0) == [b"two-1", b"two-2", b"two-3"]
    assert log.replay(1, 3) == []
    with pytest.raises(UnknownStream):
        log.replay(9, 0)


def test_the_log_is_bounded_and_refuses_a_replay_with_a_gap() -> None:
    log = EventLog(max_events=3, max_bytes=1000)
    log.open_stream(1)
    for seq in range(1, 6):
        log.append(1, seq, b"x" * 10)
    assert log.size == (3, 30)
    assert len(log.replay(1, 2)) == 3
    with pytest.raises(EventsLost):
        log.replay(1, 1)
    by_bytes = EventLog(max_events=100, max_bytes=25)
    by_bytes.open_stream(1)
    for seq in range(1, 4):
        by_bytes.append(1, seq, b"y" * 10)
    assert by_bytes.size == (2, 20)
    huge = EventLog(max_events=100, max_bytes=5)
    huge.open_stream(1)
    huge.append(1, 1, b"z" * 50)  # the newest event is kept even when it alone exceeds the bound
    assert huge.replay(1, 0) == [b"z" * 50]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("3-17", (3, 17)),
        (" 12-0 ", (12, 0)),
        ("3", None),
        ("a-1", None),
        ("1-2-3", None),
        ("9" * 19 + "-1", None),
    ],
)
def test_parse_event_id(value: str, parsed: tuple[int, int] | None) -> None:
    assert parse_event_id(value) == parsed


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
