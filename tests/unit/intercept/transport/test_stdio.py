"""Line framing and fd channels: bounded lines, oversized lines dropped unbuffered, the stream continuing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import pytest

from intercept.transport.base import FRAME_EDGE_BYTES, FrameTooLarge, PumpableChannel
from intercept.transport.stdio import (
    MAX_QUEUED_BYTES,
    READ_CHUNK,
    FdChannel,
    Frame,
    LineSplitter,
    StdioChild,
    StdioSelf,
    exit_status,
)


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


def oversized_line(size: int) -> bytes:
    """A JSON-RPC-looking line of `size` bytes whose start and end differ from its middle."""
    head = b'{"jsonrpc":"2.0","id":"head-id","method":"tools/call","params":{"pad":"'
    tail = b'"},"end":"tail-marker"}'
    return head + b"m" * (size - len(head) - len(tail)) + tail


def too_large_frames(chunks: list[bytes], limit: int = 10_000) -> list[FrameTooLarge]:
    splitter = LineSplitter(limit)
    frames = [frame for chunk in chunks for frame in splitter.feed(chunk)] + splitter.finish()
    return [frame for frame in frames if isinstance(frame, FrameTooLarge)]


def in_chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(
    "chunking",
    [
        pytest.param(lambda line: [line + b"\n"], id="one-chunk"),
        pytest.param(lambda line: [b'{"before":1}\n' + line + b'\n{"after":1}\n'], id="among-lines"),
        pytest.param(lambda line: in_chunks(line + b"\n", 777), id="many-small-chunks"),
        pytest.param(lambda line: [*in_chunks(line, 5000), b"\n"], id="ends-at-chunk-boundary"),
        pytest.param(lambda line: [*in_chunks(line + b"\n", len(line) + 1)], id="newline-ends-chunk"),
        pytest.param(lambda line: in_chunks(line + b"\r\n", 3000), id="crlf"),
        pytest.param(lambda line: in_chunks(line, 4096), id="no-newline-at-eof"),
        pytest.param(lambda line: [line], id="no-newline-one-chunk"),
    ],
)
def test_oversized_line_reports_its_first_and_last_bytes(chunking: Any) -> None:
    line = oversized_line(50_000)
    (frame,) = too_large_frames(chunking(line))
    assert frame.head == line[:FRAME_EDGE_BYTES] and frame.head.startswith(b'{"jsonrpc":"2.0","id":"head-id"')
    assert frame.tail == line[-FRAME_EDGE_BYTES:] and frame.tail.endswith(b'"tail-marker"}')
    assert frame.size >= len(line)


def test_edges_of_a_line_just_over_a_small_limit_are_whole() -> None:
    line = oversized_line(1500)  # shorter than FRAME_EDGE_BYTES: head and tail are the whole line
    (frame,) = too_large_frames(in_chunks(line + b"\n", 100), limit=1024)
    assert frame.head == line and frame.tail == line and frame.size == len(line)


def test_each_oversized_line_gets_its_own_edges_and_small_lines_still_arrive() -> None:
    first, second = oversized_line(30_000), oversized_line(20_000).replace(b"head-id", b"next-id")
    splitter = LineSplitter(10_000)
    frames: list[Frame] = []
    for chunk in in_chunks(first + b"\nsmall\n" + second + b"\n", 999):
        frames += splitter.feed(chunk)
    frames += splitter.finish()
    assert [type(f).__name__ for f in frames] == ["FrameTooLarge", "bytes", "FrameTooLarge"]
    one, small, two = frames
    assert isinstance(one, FrameTooLarge) and isinstance(two, FrameTooLarge) and small == b"small"
    assert b"head-id" in one.head and b"next-id" in two.head and b"next-id" not in one.tail


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


class StalledPeer:
    """Writes `count` copies of a large message into a channel's read pipe, never blocking the loop."""

    def __init__(self, peer_write_fd: int, count: int) -> None:
        self.message = b'{"jsonrpc":"2.0","method":"m","params":{"pad":"' + b"p" * 100_000 + b'"}}'
        self.count = count
        self.data = (self.message + b"\n") * count
        self.offset = 0
        self.fd = peer_write_fd
        os.set_blocking(peer_write_fd, False)

    def write_some(self) -> bool:
        """Write what the pipe takes; False once it is full (or all is written)."""
        if self.offset >= len(self.data):
            return False
        try:
            self.offset += os.write(self.fd, self.data[self.offset : self.offset + 65536])
        except BlockingIOError:
            return False
        if self.offset >= len(self.data):
            os.close(self.fd)
        return True

    async def fill_until_paused(self, channel: FdChannel) -> None:
        """Write until everything is written or the channel has stopped reading a full pipe."""
        while self.offset < len(self.data):
            if not self.write_some():
                if not channel._reading:
                    return
                await asyncio.sleep(0)

    async def write_rest(self) -> None:
        while self.offset < len(self.data):
            if not self.write_some():
                await asyncio.sleep(0)

    @property
    def bound(self) -> int:
        # One read's worth of lines may land on top of a queue just under the bound.
        return MAX_QUEUED_BYTES + READ_CHUNK + len(self.message)


async def test_queued_bytes_stay_bounded_while_the_receiver_stalls() -> None:
    read_fd, peer_write = os.pipe()
    peer_read, write_fd = os.pipe()
    channel = FdChannel(read_fd, write_fd, 1 << 20)
    channel.open()
    peer = StalledPeer(peer_write, count=100)  # 10 MB, well under the count limit
    await peer.fill_until_paused(channel)
    assert peer.offset < len(peer.data), "the channel kept reading with nobody receiving"
    assert channel.queued_bytes <= peer.bound
    writing = asyncio.create_task(peer.write_rest())
    received = 0
    while (frame := await channel.receive()) is not None:  # reading resumes below half the bound
        assert frame == peer.message
        received += 1
        assert channel.queued_bytes <= peer.bound
    await writing
    assert received == peer.count
    await channel.close_write()
    os.close(peer_read)


async def test_queued_bytes_stay_bounded_while_a_pumped_handler_is_stuck() -> None:
    read_fd, peer_write = os.pipe()
    peer_read, write_fd = os.pipe()
    channel = FdChannel(read_fd, write_fd, 1 << 20)
    channel.open()
    peer = StalledPeer(peer_write, count=100)
    release = asyncio.Event()
    handled: list[bytes] = []

    async def handle(message: bytes) -> None:
        await release.wait()
        handled.append(message)

    async def too_large(exc: FrameTooLarge) -> None:
        raise AssertionError(exc)

    pumping = asyncio.create_task(channel.pump(handle, too_large))
    await peer.fill_until_paused(channel)
    assert peer.offset < len(peer.data), "the channel kept reading while its handler was stuck"
    assert channel.queued_bytes <= peer.bound
    release.set()
    writing = asyncio.create_task(peer.write_rest())
    while not pumping.done():
        assert channel.queued_bytes <= peer.bound
        await asyncio.sleep(0)
    await pumping
    await writing
    assert handled == [peer.message] * peer.count
    await channel.close_write()
    os.close(peer_read)


async def test_child_round_trip_and_exit_status() -> None:
    program = "import sys\nfor l in sys.stdin: print(l.strip()[::-1], flush=True)\nsys.exit(3)"
    child = await StdioChild.start([sys.executable, "-c", program])
    await child.send(b"abc")
    assert await child.receive() == b"cba"
    await child.close()
    assert await child.receive() is None
    assert await child.wait() == 3


LINGERING_CHILD = """
import signal, sys, time
if "ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
for line in sys.stdin:
    pass
print('{"said":"after end of input"}', flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("mode", "status"),
    [("", 128 + signal.SIGTERM), ("ignore-term", 128 + signal.SIGKILL)],
    ids=["stops-on-sigterm", "needs-sigkill"],
)
async def test_a_child_that_ignores_end_of_input_is_terminated_and_its_last_words_arrive(
    mode: str, status: int
) -> None:
    child = await StdioChild.start([sys.executable, "-c", LINGERING_CHILD, mode], exit_grace=0.3)
    await child.close()
    assert await child.receive() == b'{"said":"after end of input"}'
    assert await child.receive() is None
    assert await child.wait() == status


def gone(pid: int) -> bool:
    """The process no longer runs (reaped, or a zombie waiting for its new parent to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


async def start_child_with_helper(ending: str, own_session: bool = False) -> tuple[StdioChild, int]:
    """A child ignoring SIGTERM that starts a sleeping helper sharing its stdout, reads to end of
    input, then runs `ending`."""
    program = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sleeper = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        f"helper = subprocess.Popen(sleeper, start_new_session={own_session})\n"
        "print(helper.pid, flush=True)\n"
        "sys.stdin.read()\n"
    ) + ending
    child = await StdioChild.start([sys.executable, "-c", program], exit_grace=0.3)
    return child, int(await child.receive() or b"0")


async def test_sigkill_takes_the_helpers_the_child_started_holding_its_stdout() -> None:
    child, helper_pid = await start_child_with_helper("time.sleep(60)\n")
    await child.close()
    assert await child.receive() is None
    assert await child.wait() == 128 + signal.SIGKILL
    for _ in range(500):
        if gone(helper_pid):
            break
        await asyncio.sleep(0.01)
    assert gone(helper_pid)


async def test_a_child_whose_helper_keeps_its_stdout_open_still_ends() -> None:
    child, helper_pid = await start_child_with_helper(
        "print('{\"bye\":1}', flush=True)\nsys.exit(4)\n", own_session=True
    )
    try:
        await child.close()
        assert await child.receive() == b'{"bye":1}'
        assert await child.receive() is None  # the helper still holds the pipe; reading stops anyway
        assert await child.wait() == 4
        assert not gone(helper_pid)
    finally:
        os.kill(helper_pid, signal.SIGKILL)


async def test_wait_without_close_ends_the_childs_input_first() -> None:
    program = "import sys\nsys.stdin.read()\nsys.exit(6)"
    child = await StdioChild.start([sys.executable, "-c", program], exit_grace=30)
    assert await child.wait() == 6


async def test_a_child_that_never_reads_its_input_is_still_shut_down() -> None:
    program = "import time\ntime.sleep(60)"
    child = await StdioChild.start([sys.executable, "-c", program], exit_grace=0.3)
    for _ in range(2):
        await child.send(b"x" * 100_000)  # more than the pipe holds: the rest waits in the channel
    await child.close()
    assert await child.wait() == 128 + signal.SIGTERM


async def test_unstartable_child_raises_oserror() -> None:
    with pytest.raises(OSError):
        await StdioChild.start(["/nonexistent/intercept-test-binary"])


def test_exit_status_maps_signals() -> None:
    assert exit_status(-15) == 143 and exit_status(0) == 0 and exit_status(None) == 1


def test_both_stdio_channels_declare_eager_pumping() -> None:
    assert issubclass(StdioChild, PumpableChannel) and issubclass(StdioSelf, PumpableChannel)
