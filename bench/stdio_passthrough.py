"""Floors for any Python stdio relay: copy bytes both ways, with a little more work per level.

Used by bench/proxy_latency.py as reference configurations: the proxy cannot add less
latency than the level that does the least of its work, on the same machine. Shapes:

    stdio_passthrough.py CMD...                  one blocking reader thread per direction
                                                 (os.read/os.write), bytes copied as read
    stdio_passthrough.py --asyncio CMD...        one event loop (add_reader + os.write), the
                                                 shape `intercept run` uses over stdio
    stdio_passthrough.py --split CMD...          threads, and each chunk split into lines by the
                                                 proxy's own LineSplitter, one write per line
    stdio_passthrough.py --split-decode CMD...   as --split, and each line decoded by msgspec
                                                 with its id kept in a dict of pending requests:
                                                 the least a relay that reads the messages does

The last two form a ladder between "copy bytes" and the proxy: the difference between
neighbouring rows is what that step of work costs inside a process that sleeps between
messages (see BENCHMARKS.md, "stdio proxy and engine": where the remaining time goes).
"""

import asyncio
import os
import subprocess
import sys
import threading

import msgspec

from intercept.transport.stdio import LineSplitter

READ_CHUNK = 65536  # below glibc's mmap threshold: a larger read buffer page-faults per read
LINE_LIMIT = 16 * 1024 * 1024


async def relay_asyncio(child: "subprocess.Popen[bytes]") -> None:
    loop = asyncio.get_running_loop()
    assert child.stdin is not None and child.stdout is not None
    to_child, from_child = child.stdin.fileno(), child.stdout.fileno()
    os.set_blocking(0, False)
    os.set_blocking(from_child, False)
    finished = loop.create_future()

    def upward() -> None:
        chunk = os.read(0, READ_CHUNK)
        if not chunk:
            loop.remove_reader(0)
            child.stdin.close()  # type: ignore[union-attr]
            return
        os.write(to_child, chunk)

    def downward() -> None:
        chunk = os.read(from_child, READ_CHUNK)
        if not chunk:
            loop.remove_reader(from_child)
            finished.set_result(None)
            return
        os.write(1, chunk)

    loop.add_reader(0, upward)
    loop.add_reader(from_child, downward)
    await finished


def copy_bytes(read_fd: int, write_fd: int) -> None:
    while chunk := os.read(read_fd, READ_CHUNK):
        os.write(write_fd, chunk)


def copy_lines(read_fd: int, write_fd: int) -> None:
    splitter = LineSplitter(LINE_LIMIT)
    while chunk := os.read(read_fd, READ_CHUNK):
        for line in splitter.feed(chunk):
            if isinstance(line, bytes):
                os.write(write_fd, line + b"\n")


def decode_lines(read_fd: int, write_fd: int, pending: dict[object, object], upward: bool) -> None:
    splitter = LineSplitter(LINE_LIMIT)
    decode = msgspec.json.decode
    while chunk := os.read(read_fd, READ_CHUNK):
        for line in splitter.feed(chunk):
            if not isinstance(line, bytes):
                continue
            message = decode(line)
            if isinstance(message, dict):
                if upward:
                    pending[message.get("id")] = message.get("method")
                else:
                    pending.pop(message.get("id"), None)
            os.write(write_fd, line + b"\n")


def relay_threads(child: "subprocess.Popen[bytes]", level: str) -> None:
    assert child.stdin is not None and child.stdout is not None
    to_child, from_child = child.stdin.fileno(), child.stdout.fileno()
    pending: dict[object, object] = {}

    def direction(read_fd: int, write_fd: int, upward: bool) -> None:
        if level == "--split":
            copy_lines(read_fd, write_fd)
        elif level == "--split-decode":
            decode_lines(read_fd, write_fd, pending, upward)
        else:
            copy_bytes(read_fd, write_fd)

    def up() -> None:
        direction(0, to_child, True)
        child.stdin.close()  # type: ignore[union-attr]

    threading.Thread(target=up, daemon=True).start()
    direction(from_child, 1, False)


def main(arguments: list[str]) -> None:
    level = arguments[0] if arguments[:1] and arguments[0].startswith("--") else ""
    command = arguments[1:] if level else arguments
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    if level == "--asyncio":
        asyncio.run(relay_asyncio(child))
    else:
        relay_threads(child, level)
    child.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
