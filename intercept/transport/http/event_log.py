"""The listener's SSE replay buffer: one bounded log of sent events per client session.

Streamable HTTP (2025-11-25) lets a client whose SSE stream broke reconnect with a GET carrying
`Last-Event-ID`; the server then replays the events of *that* stream sent after that id, and
only those. Event ids here are `<stream>-<seq>`: the stream number is unique within the
listener process and `seq` counts the stream's events from 1 (0 is the priming event, which
carries no message). Each session owns one log, so an id can only ever select that session's
own events; an id naming another session's stream is simply unknown here.

The log is bounded by event count and by bytes, oldest first. When a stream's events after the
requested id have been evicted, `replay` refuses (`EventsLost`) rather than silently skipping.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque

DEFAULT_MAX_EVENTS = 1000
DEFAULT_MAX_BYTES = 1024 * 1024
"""Per session: with many idle sessions, what they hold adds up; the newest event is always kept."""
_STREAMS_REMEMBERED = 1000
_EVENT_ID = re.compile(r"([0-9]{1,18})-([0-9]{1,18})")


class UnknownStream(LookupError):
    """The id names no stream of this session."""


class EventsLost(LookupError):
    """Some events after the id were evicted from the bounded log."""


def event_id(stream: int, seq: int) -> str:
    return f"{stream}-{seq}"


def parse_event_id(value: str) -> tuple[int, int] | None:
    """`(stream, seq)` from a `Last-Event-ID` value this listener issued; None otherwise."""
    match = _EVENT_ID.fullmatch(value.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


class EventLog:
    """Recently sent SSE events of one session, by stream, for `Last-Event-ID` replay."""

    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._order: deque[tuple[int, int]] = deque()
        """(stream, size) of every held event, oldest first."""
        self._by_stream: dict[int, deque[tuple[int, bytes]]] = {}
        self._evicted: OrderedDict[int, int] = OrderedDict()
        """Per stream, the highest seq already evicted (a replay from below it would skip events)."""
        self._known: OrderedDict[int, None] = OrderedDict()
        self._bytes = 0

    def open_stream(self, stream: int) -> None:
        """Record that `stream` belongs to this session, even before it carries an event."""
        self._known[stream] = None
        if len(self._known) > _STREAMS_REMEMBERED:
            self._known.popitem(last=False)

    def knows(self, stream: int) -> bool:
        return stream in self._known or stream in self._by_stream

    def append(self, stream: int, seq: int, encoded: bytes) -> None:
        self._by_stream.setdefault(stream, deque()).append((seq, encoded))
        self._order.append((stream, len(encoded)))
        self._bytes += len(encoded)
        # The newest event is always kept, so any single message can be replayed once.
        while len(self._order) > 1 and (len(self._order) > self.max_events or self._bytes > self.max_bytes):
            old_stream, size = self._order.popleft()
            self._bytes -= size
            events = self._by_stream[old_stream]
            seq_dropped, _ = events.popleft()
            if not events:
                del self._by_stream[old_stream]
            self._evicted[old_stream] = seq_dropped
            self._evicted.move_to_end(old_stream)
            if len(self._evicted) > _STREAMS_REMEMBERED:
                self._evicted.popitem(last=False)

    def replay(self, stream: int, after: int) -> list[bytes]:
        """The stream's held events with a seq above `after`, in order."""
        if not self.knows(stream):
            raise UnknownStream(stream)
        if self._evicted.get(stream, 0) > after:
            raise EventsLost(stream)
        return [encoded for seq, encoded in self._by_stream.get(stream, ()) if seq > after]

    @property
    def size(self) -> tuple[int, int]:
        """(events, bytes) held."""
        return len(self._order), self._bytes
