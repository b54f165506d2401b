"""Where `intercept run`'s diagnostics go: stderr or a private log file, never stdout."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from intercept.util.fsutil import open_private

LOG_FORMAT = "%(asctime)s intercept[%(process)d] %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, log_file: Path | None) -> None:
    """Logs go to stderr or `log_file`, never stdout (stdout carries only protocol messages).

    A log file is created 0600 and must be this user's alone, like the proxy's other files;
    OSError (naming the file and the fix) otherwise.
    """
    if log_file is not None:
        fd = open_private(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, "log file")
        stream = open(fd, "a", encoding="utf-8", errors="backslashreplace", buffering=1)  # noqa: SIM115
        handler: logging.Handler = logging.StreamHandler(stream)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("intercept")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
