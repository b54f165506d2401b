"""The audit log: one JSON object per line for `startup`, `tool_call`, `reload` and `shutdown`.

Files live under `~/.intercept/events/` (one per UTC day, `events-YYYY-MM-DD.jsonl`) or at the
path given by `--audit-log`. Several proxies may append to the same file: events are written
whole lines per `write` on a file opened with O_APPEND, so lines never interleave. Inside
an event loop, events are written just after the current callback (after the call has been
forwarded), keeping the file write off the call's path.

A `tool_call` event records the tool, the decision, the rule and a keyed hash of the
arguments (HMAC-SHA256 with a random key kept next to the log, mode 0600), so equal
arguments can be correlated without the log revealing them, even low-entropy secrets that a
plain hash would give away to a dictionary attack. Raw arguments are never written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intercept import __version__

log = logging.getLogger("intercept.audit")

DEFAULT_EVENTS_DIR = Path("~/.intercept/events")
KEY_FILENAME = ".audit-hash-key"


def default_log_path(now: dt.datetime | None = None) -> Path:
    day = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d")
    return DEFAULT_EVENTS_DIR.expanduser() / f"events-{day}.jsonl"


def _load_key(directory: Path) -> bytes:
    path = directory / KEY_FILENAME
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError):
        pass
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another proxy created it first
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex())
    return key


class AuditLog:
    """Appends events for one proxy instance. Write failures are logged, never raised."""

    def __init__(self, path: Path, instance: str | None = None) -> None:
        self.path = path
        self.instance = instance or uuid.uuid4().hex[:12]
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._key = _load_key(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fd = fd
        self._failed = False
        self._queued: list[str] = []
        self._flush_scheduled = False

    def argument_hash(self, arguments: Mapping[str, Any]) -> str:
        canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hmac.new(self._key, canonical.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[
            :32
        ]

    def _write(self, event: str, fields: Mapping[str, Any]) -> None:
        record = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "event": event,
            "instance": self.instance,
            "pid": os.getpid(),
            **fields,
        }
        self._queued.append(json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n")
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        # Written right after the current callback, i.e. after the call was forwarded: the
        # file write overlaps with the server's work instead of adding to the call's latency.
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write queued events (one `write`, so lines from several proxies never interleave)."""
        self._flush_scheduled = False
        if not self._queued:
            return
        data = "".join(self._queued).encode("ascii")
        self._queued.clear()
        try:
            os.write(self._fd, data)
        except OSError as exc:
            if not self._failed:
                log.error("cannot write audit log %s: %s", self.path, exc.strerror or exc)
                self._failed = True

    def startup(self, policy: str, summary: str, upstream: str, state: str) -> None:
        """`upstream` should name the server executable only: its arguments may hold secrets."""
        self._write(
            "startup",
            {
                "version": __version__,
                "policy": policy,
                "summary": summary,
                "upstream": upstream,
                "state": state,
            },
        )

    def tool_call(
        self, tool: str, decision: str, rule: str, reason: str, arguments: Mapping[str, Any]
    ) -> None:
        self._write(
            "tool_call",
            {
                "tool": tool,
                "decision": decision,
                "rule": rule,
                "reason": reason,
                "args_hmac": self.argument_hash(arguments),
            },
        )

    def reload(self, ok: bool, policy: str, detail: str) -> None:
        self._write("reload", {"ok": ok, "policy": policy, "detail": detail})

    def shutdown(self, exit_status: int) -> None:
        self._write("shutdown", {"exit_status": exit_status})

    def close(self) -> None:
        self.flush()
        with contextlib.suppress(OSError):
            os.close(self._fd)
