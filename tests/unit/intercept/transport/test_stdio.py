"""Line framing and fd channels: bounded lines, oversized lines dropped unbuffered, the stream continuing."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from intercept.transport.base import FrameTooLarge
from intercept.transport.stdio import FdChannel, LineSplitter, StdioChild, exit_status


def split(chunks: list[bytes], limit: int = 1024) -> list[bytes | str]:
    splitter = LineSplitter(limit)
    out: list[bytes | str] = []
    for chunk in [*chunks, None]:
        frames = splitter.feed(chunk) if chunk is not None else splitter.finish()
        out += ["TOO LARGE" if isinstance(f, FrameTooLarge) else f for f in frames]
    return out


def test_lines_split_across_and_within_chunks() -> None:
    assert split([b'{"a":1}\n{"b"', b':2}\r\n\n  \n{"c":3}']) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert split([b'{"one":1}\n']) == [b'{"one":1}']


def test_oversized_line_streamed_in_chunks_is_dropped_and_the_next_line_arrives() -> None:
    assert split([b"x" * 700, b"x" * 700, b"x" * 700 + b"\n" + b'{"ok":1}\n']) == ["TOO LARGE", b'{"ok":1}']


def test_oversized_line_inside_one_chunk() -> None:
    assert split([b"y" * 5000 + b"\nok\n"]) == ["TOO LARGE", b"ok"]


def test_buffer_never_grows_far_beyond_the_limit_while_discarding() -> None:
    splitter = LineSplitter(4096)
    for _ in range(200):
        assert splitter.feed(b"z" * 1000) == []
        assert len(splitter._buffer) <= 4096
    frames = splitter.feed(b"\nnext\n")
    assert isinstance(frames[0], FrameTooLarge) and frames[0].size >= 200_000 and frames[1:] == [b"next"]


def test_oversized_unterminated_line_at_eof() -> None:
    assert split([b"q" * 3000]) == ["TOO LARGE"]
    assert split([b"q" * 300]) == [b"q" * 300]


async def test_fd_channel_round_trip_back_pressure_and_eof() -> None:
    read_fd, peer_write = os.pipe()
    peer_read, write_fd = os.pipe()
    channel = FdChannel(read_fd, write_fd, 1 << 20)
    channel.open()
    os.write(peer_write, b'{"a":1}\n' * 1000)
    assert [await channel.receive() for _ in range(1000)] == [b'{"a":1}'] * 1000
    big = b"b" * 100_000
    sender = asyncio.gather(*(channel.send(big) for _ in range(20)))
    received = bytearray()
    os.set_blocking(peer_read, False)
    while len(received) < 20 * (len(big) + 1):
        try:
            received += os.read(peer_read, 1 << 20)
        except BlockingIOError:
            await asyncio.sleep(0.001)
    await sender
    assert bytes(received) == (big + b"\n") * 20
    os.close(peer_write)
    assert await channel.receive() is None
    await channel.close_write()
    assert os.read(peer_read, 10) == b""
    for fd in (read_fd, peer_read):
        os.close(fd)


async def test_child_round_trip_and_exit_status() -> None:
    program = "import sys\nfor l in sys.stdin: print(l.strip()[::-1], flush=True)\nsys.exit(3)"
    child = await StdioChild.start([sys.executable, "-c", program])
    await child.send(b"abc")
    assert await child.receive() == b"cba"
    await child.close()
    assert await child.receive() is None
    assert await child.wait() == 3


async def test_unstartable_child_raises_oserror() -> None:
    with pytest.raises(OSError):
        await StdioChild.start(["/nonexistent/intercept-test-binary"])


def test_exit_status_maps_signals() -> None:
    assert exit_status(-15) == 143 and exit_status(0) == 0 and exit_status(None) == 1
