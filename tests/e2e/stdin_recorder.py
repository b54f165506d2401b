"""Run a command, appending every byte it receives on stdin to a log file: `stdin_recorder.py LOG -- CMD...`.

Placed between `intercept run` and a real server, it shows exactly what reached the server.
The child's stdout and stderr are inherited untouched; the child's exit status is returned.
"""

import contextlib
import io
import subprocess
import sys
import threading

log_path, separator, *command = sys.argv[1:]
assert separator == "--", "usage: stdin_recorder.py LOG -- CMD..."
child = subprocess.Popen(command, stdin=subprocess.PIPE)


def pump() -> None:
    assert child.stdin is not None
    with open(log_path, "ab", buffering=0) as log:
        stdin = sys.stdin.buffer
        assert isinstance(stdin, io.BufferedReader)
        while chunk := stdin.read1(65536):
            log.write(chunk)
            try:
                child.stdin.write(chunk)
                child.stdin.flush()
            except BrokenPipeError:
                break
    with contextlib.suppress(BrokenPipeError):
        child.stdin.close()


threading.Thread(target=pump, daemon=True).start()
sys.exit(child.wait())
