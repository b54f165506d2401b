"""The listener's bounded SSE replay log and its event ids."""

from __future__ import annotations

import pytest

from intercept.transport.http.event_log import EventLog, EventsLost, UnknownStream, parse_event_id


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
