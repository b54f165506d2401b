"""The floor for any Python stdio relay: copy bytes both ways with `add_reader` and `os.write`, nothing else.

Used by bench/proxy_latency.py as a reference configuration: the proxy cannot add less
latency than this on the same machine. `stdio_passthrough.py CMD...`
"""

import asyncio
import os
import subprocess
import sys


async def main(command: list[str]) -> None:
    loop = asyncio.get_running_loop()
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
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
    child.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
