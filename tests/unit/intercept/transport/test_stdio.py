"""Line framing: bounded lines, oversized lines dropped without buffering them, the stream continuing."""

from __future__ import annotations

import sys

import pytest

from intercept.transport.base import FrameTooLarge
from intercept.transport.stdio import LineFramer, StdioChild, exit_status


def reader(chunks: list[bytes]):  # type: ignore[no-untyped-def]
    pending = list(chunks)
    largest: list[int] = [0]

    async def read(n: int) -> bytes:
        if not pending:
            return b""
        chunk = pending.pop(0)
        largest[0] = max(largest[0], len(chunk))
        return chunk

    return read


async def test_lines_split_across_and_within_chunks() -> None:
    framer = LineFramer(reader([b'{"a":1}\n{"b"', b':2}\r\n\n{"c":3}']), 1024)
    assert [await framer.receive() for _ in range(4)] == [b'{"a":1}', b'{"b":2}', b'{"c":3}', None]


async def test_oversized_line_is_dropped_and_the_next_line_still_arrives() -> None:
    limit = 1024
    chunks = [b"x" * 700, b"x" * 700, b"x" * 700 + b"\n" + b'{"ok":1}\n']
    framer = LineFramer(reader(chunks), limit)
    with pytest.raises(FrameTooLarge) as caught:
        await framer.receive()
    assert caught.value.limit == limit and caught.value.size > limit
    assert await framer.receive() == b'{"ok":1}'
    assert await framer.receive() is None


async def test_oversized_line_inside_one_chunk() -> None:
    framer = LineFramer(reader([b"y" * 5000 + b"\nok\n"]), 1024)
    with pytest.raises(FrameTooLarge):
        await framer.receive()
    assert await framer.receive() == b"ok"


async def test_buffer_never_grows_far_beyond_the_limit_while_discarding() -> None:
    limit = 4096
    framer = LineFramer(reader([b"z" * 1000] * 200 + [b"\nnext\n"]), limit)
    with pytest.raises(FrameTooLarge):
        await framer.receive()
    assert len(framer._buffer) < 2 * limit
    assert await framer.receive() == b"next"


async def test_oversized_unterminated_line_at_eof() -> None:
    framer = LineFramer(reader([b"q" * 3000]), 1024)
    with pytest.raises(FrameTooLarge):
        await framer.receive()
    assert await framer.receive() is None


async def test_child_round_trip_and_exit_status() -> None:
    child = await StdioChild.start(
        [
            sys.executable,
            "-c",
            "import sys\nfor l in sys.stdin: print(l.strip()[::-1], flush=True)\nsys.exit(3)",
        ]
    )
    await child.send(b"abc")
    assert await child.receive() == b"cba"
    await child.close()
    assert await child.receive() is None
    assert await child.wait() == 3


def test_exit_status_maps_signals() -> None:
    assert exit_status(-15) == 143 and exit_status(0) == 0 and exit_status(None) == 1
