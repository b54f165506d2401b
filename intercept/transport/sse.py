"""Server-Sent Events framing: decode an event stream into events, and encode one event.

Both Streamable HTTP transports need it (the upstream client reads SSE responses, the listener
writes them). Only the fields MCP uses are kept: `event`, `data`, `id` and `retry`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from intercept.transport.base import FrameTooLarge


@dataclass(slots=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None
    retry_ms: int | None = None


async def decode_events(lines: AsyncIterator[str], max_bytes: int) -> AsyncIterator[SseEvent | FrameTooLarge]:
    """Yield each complete event from a stream of lines (without line endings).

    An event whose data exceeds `max_bytes` is skipped and reported as a FrameTooLarge item,
    so one oversized event neither ends the stream nor grows memory past the limit.
    """
    data: list[str] = []
    size = 0
    oversized = False
    event = "message"
    event_id: str | None = None
    retry: int | None = None
    async for line in lines:
        if not line:
            if oversized:
                yield FrameTooLarge(size, max_bytes)
            elif data:
                yield SseEvent("\n".join(data), event, event_id, retry)
            elif event_id is not None or retry is not None:
                # A priming event (id only, no data) still moves the resume cursor.
                yield SseEvent("", event, event_id, retry)
            data, size, oversized, event, retry = [], 0, False, "message", None
            event_id = None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            size += len(value) + 1
            if size > max_bytes:
                oversized = True
                data = []
            elif not oversized:
                data.append(value)
        elif field == "event":
            event = value or "message"
        elif field == "id" and "\0" not in value:
            event_id = value
        elif field == "retry" and value.isdigit():
            retry = int(value)
    if data and not oversized:
        yield SseEvent("\n".join(data), event, event_id, retry)


def encode_event(data: bytes, event_id: str | None = None) -> bytes:
    """One `message` event carrying a JSON-RPC message (compact JSON has no raw newlines)."""
    head = f"id: {event_id}\n".encode() if event_id is not None else b""
    lines = data.split(b"\n")
    return head + b"event: message\n" + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
