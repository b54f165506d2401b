"""Newline-delimited JSON-RPC over pipes: the proxy's own stdin/stdout, and a child process's.

Framing only: a message is one line, without its `\\n` (a trailing `\\r` is dropped too, blank
lines are skipped). Lines are bounded (`max_message_bytes`, 16 MiB by default): an oversized
line is discarded as it streams in, never buffered whole, and reported as `FrameTooLarge` once
its end is reached.

Speed matters here: every message crosses two of these channels. `FdChannel` works on raw
file descriptors with `loop.add_reader` and `os.write`, skipping asyncio's stream layers (which
measured about three times the per-hop cost of this path); reads stop while many messages or
bytes are waiting (back-pressure, `MAX_QUEUED_BYTES`) and a full pipe makes `send` wait.
Descriptors epoll cannot watch (a regular file on stdin) are read from a worker thread instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from intercept.transport.base import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FRAME_EDGE_BYTES,
    FrameTooLarge,
    Handler,
    PumpableChannel,
    TooLargeHandler,
)

log = logging.getLogger("intercept.transport.stdio")

READ_CHUNK = 256 * 1024
HIGH_WATER = 256 * 1024
MAX_QUEUED_MESSAGES = 256
MAX_QUEUED_BYTES = 4 * 1024 * 1024
"""Reading pauses once this many bytes (or MAX_QUEUED_MESSAGES messages) wait unhandled, and
resumes below half of both: a peer that stops reading cannot make the proxy hold more than about
this much per direction, plus one message, however large `max_message_bytes` is."""
CHILD_EXIT_GRACE_SECONDS = 5.0

Frame = bytes | FrameTooLarge
_TAIL_KEPT = FRAME_EDGE_BYTES + 1  # one more, for the `\r` of a `\r\n` line end


class LineSplitter:
    """Push-based line framing: `feed` chunks, get complete lines (or FrameTooLarge) back.

    An oversized line is reported with its first and last `FRAME_EDGE_BYTES` (`head`, `tail`);
    while one streams in, only those edges are kept, never the line.
    """

    def __init__(self, max_message_bytes: int) -> None:
        self._limit = max_message_bytes
        self._buffer = bytearray()
        self._discarded: int | None = None  # bytes dropped so far of an oversized line
        self._head = b""
        self._tail = b""

    def _line(self, line: bytes, out: list[Frame]) -> None:
        if len(line) > self._limit:
            out.append(_too_large(len(line), self._limit, line[:FRAME_EDGE_BYTES], line[-_TAIL_KEPT:]))
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            out.append(line)

    def _discard(self, part: bytes | bytearray) -> None:
        """Account for `part` of the oversized line being dropped, keeping only its edges."""
        assert self._discarded is not None
        self._discarded += len(part)
        if len(self._head) < FRAME_EDGE_BYTES:
            self._head += bytes(part[: FRAME_EDGE_BYTES - len(self._head)])
        self._tail = (self._tail + bytes(part[-_TAIL_KEPT:]))[-_TAIL_KEPT:]

    def _dropped(self, out: list[Frame]) -> None:
        assert self._discarded is not None
        out.append(_too_large(self._discarded, self._limit, self._head, self._tail))
        self._discarded = None
        self._head = self._tail = b""

    def feed(self, chunk: bytes) -> list[Frame]:
        out: list[Frame] = []
        if self._discarded is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._discard(chunk)
                return out
            self._discard(chunk[:newline])
            self._dropped(out)
            chunk = chunk[newline + 1 :]
        buffer = self._buffer
        if not buffer and chunk.endswith(b"\n") and chunk.count(b"\n") == 1:
            self._line(chunk[:-1], out)  # the common case: exactly one whole message
            return out
        buffer += chunk
        start = 0
        while (newline := buffer.find(b"\n", start)) >= 0:
            self._line(bytes(buffer[start:newline]), out)
            start = newline + 1
        del buffer[:start]
        if len(buffer) > self._limit:
            self._discarded = 0
            self._discard(buffer)
            buffer.clear()
        return out

    def finish(self) -> list[Frame]:
        """Whatever the stream ended with (a last line without its newline)."""
        out: list[Frame] = []
        if self._discarded is not None:
            self._dropped(out)
        elif self._buffer:
            self._line(bytes(self._buffer), out)
        self._buffer.clear()
        return out


def _frame_size(frame: Frame) -> int:
    return len(frame) if isinstance(frame, bytes) else len(frame.head) + len(frame.tail)


def _too_large(size: int, limit: int, head: bytes, tail: bytes) -> FrameTooLarge:
    """FrameTooLarge with `tail` ending where the message does (before a `\\r\\n` line end)."""
    return FrameTooLarge(size, limit, head, tail[:-1] if tail.endswith(b"\r") else tail)


class FdChannel:
    """A `MessageChannel` over a readable and a writable file descriptor (pipes or a terminal)."""

    def __init__(
        self, read_fd: int, write_fd: int, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        """Takes ownership of both descriptors (closes them)."""
        self._rfd = read_fd
        self._wfd = write_fd
        self._splitter = LineSplitter(max_message_bytes)
        self._frames: collections.deque[Frame] = collections.deque()
        self._queued_bytes = 0
        self._eof = False
        self._reading = False
        self._threaded = False
        self._waiter: asyncio.Future[None] | None = None
        self._out = bytearray()
        self._drained: asyncio.Future[None] | None = None
        self._write_closed = False
        self._write_is_file = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_reader: asyncio.Task[None] | None = None
        self._handle: Callable[[bytes], Coroutine[Any, Any, None]] | None = None
        self._too_large: Callable[[FrameTooLarge], Coroutine[Any, Any, None]] | None = None
        self._busy = False
        self._pumped: asyncio.Future[None] | None = None

    def open(self) -> None:
        """Start reading; call from the running event loop."""
        self._loop = loop = asyncio.get_running_loop()
        try:
            os.set_blocking(self._wfd, False)
        except OSError:
            self._write_is_file = True
        self._write_is_file = self._write_is_file or os.path.isfile(f"/proc/self/fd/{self._wfd}")
        try:
            os.set_blocking(self._rfd, False)
            loop.add_reader(self._rfd, self._on_readable)
            self._reading = True
        except (OSError, ValueError):
            # epoll cannot watch regular files: read them from a worker thread.
            os.set_blocking(self._rfd, True)
            self._threaded = True
            self._thread_reader = loop.create_task(self._read_in_thread())

    @property
    def queued_bytes(self) -> int:
        """Bytes of messages read but not yet handed on (`receive` or `pump`)."""
        return self._queued_bytes

    def _push(self, frames: list[Frame]) -> None:
        for frame in frames:
            self._queued_bytes += _frame_size(frame)
        self._frames.extend(frames)
        if self._handle is not None:
            self._dispatch()
            return
        if frames:
            self._flow_control()
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self._frames or self._eof):
            waiter.set_result(None)

    def _on_readable(self) -> None:
        try:
            chunk = os.read(self._rfd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self._push(self._splitter.feed(chunk))
            return
        self._end_of_input()

    def _end_of_input(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self._rfd)
            self._reading = False
        self._eof = True
        self._push(self._splitter.finish())

    async def _read_in_thread(self) -> None:
        while not self._eof:
            try:
                chunk = await asyncio.to_thread(os.read, self._rfd, READ_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                self._end_of_input()
                return
            self._push(self._splitter.feed(chunk))
            while self._queue_full() and not self._eof:
                await asyncio.sleep(0.001)

    async def pump(self, handle: Handler, too_large: TooLargeHandler) -> None:
        """Hand every message to `handle`, in order, until end of input (instead of `receive`).

        Each handler coroutine is started directly from the read callback and usually finishes
        without suspending, saving a task switch per message. If it does suspend, it finishes
        in a task and later messages wait their turn. Only use this with handlers that never
        need a current task before their first suspension (no `asyncio.timeout`).
        """
        assert self._loop is not None, "call open() first"
        self._handle, self._too_large = handle, too_large
        self._pumped = self._loop.create_future()
        self._dispatch()
        try:
            await self._pumped
        finally:
            self._handle = self._too_large = None

    def _dispatch(self) -> None:
        frames, pumped = self._frames, self._pumped
        while frames and not self._busy and self._handle is not None and self._too_large is not None:
            frame = frames.popleft()
            self._queued_bytes -= _frame_size(frame)
            coro = self._handle(frame) if isinstance(frame, bytes) else self._too_large(frame)
            try:
                yielded = coro.send(None)
            except StopIteration:
                continue
            except BaseException as exc:
                if pumped is not None and not pumped.done():
                    pumped.set_exception(exc)
                return
            self._busy = True
            assert self._loop is not None
            self._loop.create_task(_finish(coro, yielded)).add_done_callback(self._finished)
        self._flow_control()
        if self._eof and not frames and not self._busy and pumped is not None and not pumped.done():
            pumped.set_result(None)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._busy = False
        pumped = self._pumped
        if not task.cancelled() and task.exception() is not None:
            if pumped is not None and not pumped.done():
                pumped.set_exception(task.exception())  # type: ignore[arg-type]
            return
        self._dispatch()

    def _queue_full(self) -> bool:
        return len(self._frames) >= MAX_QUEUED_MESSAGES or self._queued_bytes >= MAX_QUEUED_BYTES

    def _flow_control(self) -> None:
        """Pause reading while the queue is full; resume once it is below half (count and bytes)."""
        if self._loop is None or self._threaded or self._eof:
            return
        if self._reading:
            if self._queue_full():
                self._loop.remove_reader(self._rfd)
                self._reading = False
        elif len(self._frames) < MAX_QUEUED_MESSAGES // 2 and self._queued_bytes < MAX_QUEUED_BYTES // 2:
            self._loop.add_reader(self._rfd, self._on_readable)
            self._reading = True

    async def receive(self) -> bytes | None:
        while not self._frames:
            if self._eof:
                return None
            assert self._loop is not None, "call open() first"
            self._waiter = self._loop.create_future()
            await self._waiter
        frame = self._frames.popleft()
        self._queued_bytes -= _frame_size(frame)
        if not self._reading:
            self._flow_control()
        if isinstance(frame, FrameTooLarge):
            raise frame
        return frame

    async def send(self, data: bytes) -> None:
        if self._write_closed:
            return
        message = data + b"\n"
        if self._write_is_file:
            self._write_all_blocking(message)
            return
        if not self._out:
            try:
                written = os.write(self._wfd, message)
            except BlockingIOError:
                written = 0
            except OSError:
                self._write_closed = True  # the reader is gone; the read side will see EOF
                return
            if written == len(message):
                return
            self._out += message[written:]
            assert self._loop is not None
            self._loop.add_writer(self._wfd, self._on_writable)
        else:
            self._out += message
        if len(self._out) > HIGH_WATER:
            await self._drain()

    def _write_all_blocking(self, message: bytes) -> None:
        view = memoryview(message)
        try:
            while view:
                view = view[os.write(self._wfd, view) :]
        except OSError:
            self._write_closed = True

    def _on_writable(self) -> None:
        try:
            written = os.write(self._wfd, self._out)
        except BlockingIOError:
            return
        except OSError:
            self._out.clear()
            self._write_closed = True
            written = 0
        del self._out[:written]
        if not self._out:
            assert self._loop is not None
            self._loop.remove_writer(self._wfd)
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)

    async def _drain(self) -> None:
        while self._out and not self._write_closed:
            assert self._loop is not None
            if self._drained is None or self._drained.done():
                self._drained = self._loop.create_future()
            await self._drained  # one future shared by every waiting sender

    async def close_write(self) -> None:
        """Flush what is queued, then close the write side (the peer reads EOF)."""
        if self._write_closed:
            return
        await self._drain()
        self._write_closed = True
        if self._loop is not None and self._out:
            self._loop.remove_writer(self._wfd)
        self._close_write_fd()

    def _close_write_fd(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._wfd)

    def stop_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self._rfd)
            self._reading = False
        self._eof = True
        self._push([])


class StdioSelf(FdChannel, PumpableChannel):
    """The proxy's own stdin (client messages in) and stdout (messages to the client)."""

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        # Duplicates, so the process's own stdin/stdout objects stay valid and blocking-agnostic.
        super().__init__(os.dup(sys.stdin.fileno()), os.dup(sys.stdout.fileno()), max_message_bytes)

    async def open(self) -> None:  # type: ignore[override]
        FdChannel.open(self)

    async def close(self) -> None:
        self.stop_reading()
        await self.close_write()
        with contextlib.suppress(OSError):
            os.set_blocking(self._rfd, True)  # the descriptor is shared with whoever started us
            os.close(self._rfd)


class StdioChild(FdChannel, PumpableChannel):
    """An MCP server started as a child process, spoken to over its stdin and stdout.

    The child gets its own session (so a terminal's Ctrl-C reaches it only through the proxy,
    once), inherits stderr, and is sent the proxy's SIGINT/SIGTERM by `forward_signal`.

    `close()` starts the shutdown the MCP specification asks of a client: the child's input is
    closed, and a child still running `exit_grace` seconds later gets SIGTERM, then after as
    long again SIGKILL (its whole process group, so helpers it started go too). What the child
    writes until it exits is still received. `wait()` waits for all of that and returns the
    exit status.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        max_message_bytes: int,
        exit_grace: float = CHILD_EXIT_GRACE_SECONDS,
    ) -> None:
        assert process.stdout is not None and process.stdin is not None
        super().__init__(process.stdout.fileno(), process.stdin.fileno(), max_message_bytes)
        self.process = process
        self.exit_grace = exit_grace
        self._shutdown: asyncio.Task[None] | None = None
        self._output_ended = asyncio.Event()

    @classmethod
    async def start(
        cls,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        exit_grace: float = CHILD_EXIT_GRACE_SECONDS,
    ) -> StdioChild:
        """Start `command`; OSError (e.g. FileNotFoundError) if it cannot be started."""
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            bufsize=0,
        )
        child = cls(process, max_message_bytes, exit_grace)
        child.open()
        return child

    async def close(self) -> None:
        """End the child's input and start the shutdown (see the class); returns at once."""
        if self._shutdown is None:
            self._shutdown = asyncio.get_running_loop().create_task(
                self._shut_down(), name=f"shutdown of MCP server {self.process.pid}"
            )

    async def wait(self) -> int:
        """Shut the child down (if `close` has not yet) and wait for it; returns its exit status."""
        await self.close()
        assert self._shutdown is not None
        await asyncio.shield(self._shutdown)
        return exit_status(self.process.returncode)

    async def _shut_down(self) -> None:
        input_closed = asyncio.ensure_future(self.close_write())
        try:
            for step in (signal.SIGTERM, signal.SIGKILL, None):
                if await self._exits_within(self.exit_grace):
                    break
                if step is None:
                    log.error("MCP server %d survived SIGKILL; leaving it", self.process.pid)
                    break
                log.warning(
                    "MCP server did not exit %g s after its input was closed; sending %s",
                    self.exit_grace,
                    step.name,
                )
                self._send(step)
        finally:
            if not input_closed.done():
                self._abandon_input()  # nobody reads the child's stdin any more
            await input_closed
        if not self._output_ended.is_set():
            # A process the child left behind may hold its stdout open: give what the child
            # wrote time to arrive, but do not wait for that process.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.exit_grace):
                    await self._output_ended.wait()
        self.stop_reading()
        with contextlib.suppress(OSError):
            assert self.process.stdout is not None
            self.process.stdout.close()

    async def _exits_within(self, seconds: float) -> bool:
        try:
            await asyncio.to_thread(self.process.wait, seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _send(self, signum: signal.Signals) -> None:
        if signum is signal.SIGKILL:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signum)  # its own session: the group is its pid
        self.forward_signal(signum)

    def _end_of_input(self) -> None:
        super()._end_of_input()
        self._output_ended.set()

    def _abandon_input(self) -> None:
        self._out.clear()
        if self._loop is not None:
            self._loop.remove_writer(self._wfd)
        self._write_closed = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._close_write_fd()

    def _close_write_fd(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()  # through the file object that owns the descriptor

    def forward_signal(self, signum: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)


def exit_status(returncode: Any) -> int:
    """A child's returncode as a shell exit status (signals become 128 + signal number)."""
    if not isinstance(returncode, int):
        return 1
    return 128 - returncode if returncode < 0 else returncode


async def _finish(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    """Drive a coroutine that was started outside any task and suspended on `yielded`."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False
                await asyncio.wait({yielded})
        except asyncio.CancelledError:
            coro.close()
            raise
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
