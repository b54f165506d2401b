"""Newline-delimited JSON-RPC over pipes: the proxy's own stdin/stdout, and a child process's.

Framing only: a message is one line, without its `\\n` (a trailing `\\r` is dropped too, blank
lines are skipped). Lines are bounded (`max_message_bytes`, 16 MiB by default): an oversized
line is discarded as it streams in, never buffered whole, and reported as `FrameTooLarge` once
its end is reached. Writes never block the event loop; a slow reader applies back-pressure
through `send`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES, FrameTooLarge

log = logging.getLogger("intercept.transport.stdio")

READ_CHUNK = 256 * 1024
HIGH_WATER = 256 * 1024
CHILD_EXIT_GRACE_SECONDS = 5.0


class LineFramer:
    """Splits a byte stream into bounded lines. `read` returns b"" at end of stream."""

    def __init__(self, read: Callable[[int], Awaitable[bytes]], max_message_bytes: int) -> None:
        self._read = read
        self._limit = max_message_bytes
        self._buffer = bytearray()
        self._start = 0
        self._eof = False

    async def receive(self) -> bytes | None:
        while True:
            line = self._next_line()
            if line is not None:
                if line:
                    return line
                continue
            if self._eof:
                return None
            if len(self._buffer) - self._start > self._limit:
                await self._discard_oversized()
            chunk = await self._read(READ_CHUNK)
            if not chunk:
                self._eof = True
                rest = bytes(self._buffer[self._start :]).strip()
                self._buffer.clear()
                self._start = 0
                if len(rest) > self._limit:
                    raise FrameTooLarge(len(rest), self._limit)
                return rest or None
            if self._start:
                del self._buffer[: self._start]
                self._start = 0
            self._buffer += chunk

    def _next_line(self) -> bytes | None:
        end = self._buffer.find(b"\n", self._start)
        if end < 0:
            return None
        line = bytes(self._buffer[self._start : end])
        self._start = end + 1
        if len(line) > self._limit:
            raise FrameTooLarge(len(line), self._limit)
        return line[:-1] if line.endswith(b"\r") else line

    async def _discard_oversized(self) -> None:
        size = len(self._buffer) - self._start
        self._buffer.clear()
        self._start = 0
        while True:
            chunk = await self._read(READ_CHUNK)
            if not chunk:
                self._eof = True
                raise FrameTooLarge(size, self._limit)
            newline = chunk.find(b"\n")
            if newline >= 0:
                self._buffer += chunk[newline + 1 :]
                raise FrameTooLarge(size + newline, self._limit)
            size += len(chunk)


class _WriteProtocol(asyncio.Protocol):
    """Flow control for a write pipe: `wait_writable` blocks while the pipe is full."""

    def __init__(self) -> None:
        self._writable = asyncio.Event()
        self._writable.set()
        self.closed = False

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writable.set()

    async def wait_writable(self) -> None:
        await self._writable.wait()


class StdioSelf:
    """The proxy's own stdin (client messages in) and stdout (messages to the client)."""

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._limit = max_message_bytes
        self._framer: LineFramer | None = None
        self._out: asyncio.WriteTransport | None = None
        self._out_protocol: _WriteProtocol | None = None
        self._file_out: Any = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_CHUNK * 2)
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
            self._framer = LineFramer(reader.read, self._limit)
        except (ValueError, OSError):
            # stdin is a regular file: read it from a worker thread instead.
            fd = sys.stdin.fileno()
            self._framer = LineFramer(lambda n: asyncio.to_thread(os.read, fd, n), self._limit)
        out_file = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
        try:
            transport, protocol = await loop.connect_write_pipe(_WriteProtocol, out_file)
            self._out, self._out_protocol = transport, protocol
        except ValueError:
            # stdout is a regular file: plain blocking writes cannot stall on a reader.
            self._file_out = out_file

    async def receive(self) -> bytes | None:
        assert self._framer is not None, "call open() first"
        return await self._framer.receive()

    async def send(self, data: bytes) -> None:
        if self._file_out is not None:
            self._file_out.write(data + b"\n")
            return
        out, protocol = self._out, self._out_protocol
        assert out is not None and protocol is not None, "call open() first"
        if protocol.closed or out.is_closing():
            return
        out.write(data + b"\n")
        if out.get_write_buffer_size() > HIGH_WATER:
            await protocol.wait_writable()

    async def close(self) -> None:
        if self._out is not None and not self._out.is_closing():
            self._out.close()


class StdioChild:
    """An MCP server started as a child process, spoken to over its stdin and stdout.

    The child gets its own session (so a terminal's Ctrl-C reaches it only through the proxy,
    once), inherits stderr, and is sent the proxy's SIGINT/SIGTERM by `forward_signal`.
    """

    def __init__(self, process: asyncio.subprocess.Process, max_message_bytes: int) -> None:
        self.process = process
        assert process.stdout is not None and process.stdin is not None
        self._framer = LineFramer(process.stdout.read, max_message_bytes)
        self._stdin = process.stdin

    @classmethod
    async def start(
        cls,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> StdioChild:
        """Start `command`; OSError (e.g. FileNotFoundError) if it cannot be started."""
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            limit=READ_CHUNK * 2,
        )
        return cls(process, max_message_bytes)

    async def receive(self) -> bytes | None:
        return await self._framer.receive()

    async def send(self, data: bytes) -> None:
        stdin = self._stdin
        if stdin.is_closing():
            return
        stdin.write(data + b"\n")
        if stdin.transport.get_write_buffer_size() > HIGH_WATER:
            with contextlib.suppress(ConnectionError):
                await stdin.drain()

    async def close(self) -> None:
        """End the child's input; a well-behaved MCP server exits on it."""
        if not self._stdin.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                self._stdin.close()

    def forward_signal(self, signum: int) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    async def wait(self, grace: float = CHILD_EXIT_GRACE_SECONDS) -> int:
        """Wait for the child; after `grace` seconds send SIGTERM, then SIGKILL. Returns an exit status."""
        process = self.process
        for step in (signal.SIGTERM, signal.SIGKILL, None):
            try:
                await asyncio.wait_for(process.wait(), grace)
                break
            except TimeoutError:
                if step is None:
                    break
                log.warning("MCP server did not exit; sending %s", step.name)
                self.forward_signal(step)
        return exit_status(process.returncode)


def exit_status(returncode: Any) -> int:
    """A child's returncode as a shell exit status (signals become 128 + signal number)."""
    if not isinstance(returncode, int):
        return 1
    return 128 - returncode if returncode < 0 else returncode
