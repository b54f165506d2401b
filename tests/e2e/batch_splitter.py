"""Run a command, handing it each element of a JSON-RPC batch on its own line: `batch_splitter.py CMD...`.

The Python SDK's servers ignore batches; placed between `intercept run` and one of them, this
lets a test send a batch through the proxy and get the server's real answers to its elements.
Every other line passes unchanged; the child's stdout and stderr are inherited untouched.
"""

import contextlib
import json
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE)
assert child.stdin is not None
with contextlib.suppress(BrokenPipeError):
    for line in sys.stdin.buffer:
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if isinstance(message, list):
            line = b"".join(json.dumps(element).encode() + b"\n" for element in message)
        child.stdin.write(line)
        child.stdin.flush()
    child.stdin.close()
sys.exit(child.wait())
