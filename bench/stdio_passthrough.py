"""The floor for any Python stdio relay: copy bytes both ways, nothing else.

Used by bench/proxy_latency.py as reference configurations: the proxy cannot add less
latency than this on the same machine. Two shapes:

    stdio_passthrough.py CMD...            one blocking reader thread per direction (os.read/os.write)
    stdio_passthrough.py --asyncio CMD...  one event loop (add_reader + os.write), the shape
                                           `intercept run` uses over stdio
"""

import asyncio
import os
import subprocess
import sys
import threading


async def relay_asyncio(child: "subprocess.Popen[bytes]") -> None:
    loop = asyncio.get_running_loop()
    assert child.stdin is not None and child.stdout is not None
    to_child, from_child = child.stdin.fileno(), child.stdout.fileno()
    os.set_blocking(0, False)
    os.set_blocking(from_child, False)
    finished = loop.create_future()

    def upward() -> None:
        chunk = os.read(0, 65536)
        if not chunk:
            loop.remove_reader(0)
            child.stdin.close()  # type: ignore[union-attr]
            return
        os.write(to_child, chunk)

    def downward() -> None:
        chunk = os.read(from_child, 65536)
        if not chunk:
            loop.remove_reader(from_child)
            finished.set_result(None)
            return
        os.write(1, chunk)

    loop.add_reader(0, upward)
    loop.add_reader(from_child, downward)
    await finished


def relay_threads(child: "subprocess.Popen[bytes]") -> None:
    assert child.stdin is not None and child.stdout is not None
    to_child, from_child = child.stdin, child.stdout.fileno()

    def upward() -> None:
        while chunk := os.read(0, 65536):
            os.write(to_child.fileno(), chunk)
        to_child.close()

    threading.Thread(target=upward, daemon=True).start()
    while chunk := os.read(from_child, 65536):
        os.write(1, chunk)


def main(arguments: list[str]) -> None:
    use_asyncio = arguments[:1] == ["--asyncio"]
    command = arguments[1:] if use_asyncio else arguments
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    if use_asyncio:
        asyncio.run(relay_asyncio(child))
    else:
        relay_threads(child)
    child.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
