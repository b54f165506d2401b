"""Server-Sent Events framing: decode an event stream into events, and encode one event.

Both Streamable HTTP transports need it (the upstream client reads SSE responses, the listener
writes them). Only the fields MCP uses are kept: `event`, `data`, `id` and `retry`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from intercept.transport.base import FrameTooLarge

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(slots=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry_ms: int | None = None


class EventDecoder:
    """Turns lines, or raw text, into events; synchronous, so a stream costs one await per chunk.

    An event whose data exceeds `max_bytes` is skipped and reported as a FrameTooLarge item,
    so one oversized event neither ends the stream nor grows memory past the limit; a line
    that grows past the limit before it ends is dropped as it arrives, for the same reason.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._pending = ""
        self._skipping_line = False
        self._reset()

    def _reset(self) -> None:
        self._data: list[str] = []
        self._size = 0
        self._oversized = False
        self._event = "message"
        self._id: str | None = None
        self._retry: int | None = None

    def line(self, line: str) -> SseEvent | FrameTooLarge | None:
        """One line without its ending; the event it completes, if any."""
        if not line:
            item: SseEvent | FrameTooLarge | None = None
            if self._oversized:
                item = FrameTooLarge(self._size, self.max_bytes)
            elif self._data:
                item = SseEvent("\n".join(self._data), self._event, self._id, self._retry)
            elif self._id is not None or self._retry is not None:
                # A priming event (id only, no data) still moves the resume cursor.
                item = SseEvent("", self._event, self._id, self._retry)
            self._reset()
            return item
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._size += len(value) + 1
            if self._size > self.max_bytes:
                self._oversized = True
                self._data = []
            elif not self._oversized:
                self._data.append(value)
        elif field == "event":
            self._event = value or "message"
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def feed(self, text: str) -> list[SseEvent | FrameTooLarge]:
        """Raw stream text (any split); the events it completes. Lines end at CRLF, LF or CR only:
        a JSON string may hold a raw U+2028, which `str.splitlines` would split on."""
        buffer = self._pending + text
        items: list[SseEvent | FrameTooLarge] = []
        if "\r" not in buffer:
            # The usual stream ends lines with LF only: split without a regex search per line.
            lines = buffer.split("\n")
            self._pending = lines.pop()
            for line in lines:
                if self._skipping_line:
                    self._skipping_line = False
                    self._oversized = True
                elif (item := self.line(line)) is not None:
                    items.append(item)
        else:
            start = 0
            while (end := _LINE_END.search(buffer, start)) is not None:
                if end.group() == "\r" and end.end() == len(buffer):
                    break  # the "\n" of a CRLF may be in the next chunk
                if self._skipping_line:
                    self._skipping_line = False
                    self._oversized = True
                else:
                    item = self.line(buffer[start : end.start()])
                    if item is not None:
                        items.append(item)
                start = end.end()
            self._pending = buffer[start:]
        if len(self._pending) > self.max_bytes + 8:
            # Too long to be a line of an event within the limit: drop it, and its event.
            self._size += len(self._pending)
            self._pending = ""
            self._skipping_line = True
        return items

    def end(self) -> list[SseEvent | FrameTooLarge]:
        """The stream ended: the events its last, unterminated line completes; an event with
        data but no closing blank line is still delivered."""
        items: list[SseEvent | FrameTooLarge] = []
        if self._pending and not self._skipping_line:
            item = self.line(self._pending.removesuffix("\r"))
            if item is not None:
                items.append(item)
            if self._pending.endswith("\r"):
                item = self.line("")
                if item is not None:
                    items.append(item)
        self._pending = ""
        if self._data and not self._oversized and not self._skipping_line:
            items.append(SseEvent("\n".join(self._data), self._event, self._id, self._retry))
            self._reset()
        return items


async def decode_events(lines: AsyncIterator[str], max_bytes: int) -> AsyncIterator[SseEvent | FrameTooLarge]:
    """Yield each complete event from a stream of lines (without line endings)."""
    decoder = EventDecoder(max_bytes)
    async for line in lines:
        item = decoder.line(line)
        if item is not None:
            yield item
    for item in decoder.end():
        yield item


async def decode_stream(
    chunks: AsyncIterator[bytes], max_bytes: int
) -> AsyncIterator[SseEvent | FrameTooLarge]:
    """Yield each complete event from the raw bytes of a stream (UTF-8, split anywhere)."""
    decoder = EventDecoder(max_bytes)
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")
    async for chunk in chunks:
        for item in decoder.feed(text.decode(chunk)):
            yield item
    for item in [*decoder.feed(text.decode(b"", final=True)), *decoder.end()]:
        yield item


def decode_body(body: bytes, max_bytes: int) -> list[SseEvent | FrameTooLarge]:
    """Every event of a whole stream already received (UTF-8)."""
    decoder = EventDecoder(max_bytes)
    return [*decoder.feed(body.decode("utf-8", errors="replace")), *decoder.end()]


def encode_event(data: bytes, event_id: str | None = None) -> bytes:
    """One `message` event carrying a JSON-RPC message (compact JSON has no raw newlines)."""
    head = f"id: {event_id}\n".encode() if event_id is not None else b""
    lines = data.split(b"\n")
    return head + b"event: message\n" + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
