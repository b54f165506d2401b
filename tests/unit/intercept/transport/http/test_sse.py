"""Server-Sent Events decoding: fields, comments, line endings, chunk boundaries and size limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from intercept.transport.base import FrameTooLarge
from intercept.transport.http.sse import decode_events, decode_stream


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


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
