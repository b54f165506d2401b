"""The audit log: one JSON object per line for `startup`, `tool_call`, `approval`, `pin_drift`, `reload`
and `shutdown`.

Files live under `~/.intercept/events/` (one per UTC day, `events-YYYY-MM-DD.jsonl`) or at the
path given by `--audit-log`. Several proxies may append to the same file: events are written
whole lines per `write` on a file opened with O_APPEND, so lines never interleave. Only the
time is taken when an event happens; formatting, hashing and the file write come later, off
the call's path: inside an event loop, just after the current callback (after the call has
been forwarded).

A `tool_call` event records the tool, the decision, the rule, what enforcing would have denied
where shadow evaluation was asked (`would_deny`, see `intercept.shadow`) and a keyed hash of the
arguments (HMAC-SHA256 with a random key kept next to the log, mode 0600), so equal arguments
can be correlated without the log revealing them, even low-entropy secrets that a plain hash
would give away to a dictionary attack. Raw arguments are never written.

The key and the log are trusted files (`intercept.util.fsutil`): a key or log another user owns
or can write, a key others can read, or a directory another user controls refuses the log
(`UnsafeFile`, an OSError naming the file and the fix). The directory is created 0700, the
files 0600.
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
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from intercept import __version__
from intercept.util.fsutil import open_private, private_dir

log = logging.getLogger("intercept.audit")

DEFAULT_EVENTS_DIR = Path("~/.intercept/events")
# Sorted compact JSON is the hashed form of the arguments; the stdlib encoder takes what msgspec
# refuses (lone surrogates). Records are written as ASCII: msgspec when its output already is.
_canonical = msgspec.json.Encoder(order="sorted")
_canonical_fallback = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
)
_fast_record = msgspec.json.Encoder()
_record = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
KEY_FILENAME = ".audit-hash-key"


class Verdict(Protocol):
    """A would-be denial (`intercept.engine.Denial`): recorded under `would_deny`, never applied."""

    @property
    def rule(self) -> str: ...

    @property
    def reason(self) -> str: ...


def default_log_path(now: dt.datetime | None = None, directory: Path = DEFAULT_EVENTS_DIR) -> Path:
    day = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d")
    return directory.expanduser() / f"events-{day}.jsonl"


_KEY_FILE = "audit log key file"


def _read_key(path: Path) -> bytes:
    """The key in `path`; FileNotFoundError if there is none, ValueError if it is not hex, UnsafeFile
    if another user could have planted it or read it."""
    fd = open_private(path, os.O_RDONLY, _KEY_FILE, secret=True)
    with os.fdopen(fd, "r", encoding="ascii") as handle:
        return bytes.fromhex(handle.read().strip())


def _load_key(directory: Path) -> bytes:
    path = directory / KEY_FILENAME
    try:
        return _read_key(path)
    except (FileNotFoundError, ValueError):
        pass
    key = secrets.token_bytes(32)
    try:
        fd = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_FILE, secret=True)
    except FileExistsError:  # another proxy created it first, or it is not a key
        try:
            return _read_key(path)
        except ValueError:
            raise OSError(
                f"{_KEY_FILE} {path} does not hold a key (fix: remove it; a new one is made)"
            ) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex())
    return key


def _open_append(path: Path) -> int:
    return open_private(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, "audit log")


class AuditLog:
    """Appends events for one proxy instance. Write failures are logged, never raised.

    `AuditLog(path)` writes to one file; `AuditLog.daily(directory)` writes each event to the
    file of its own UTC day (`events-YYYY-MM-DD.jsonl`), so a proxy that runs past midnight
    moves to the next day's file.
    """

    def __init__(
        self,
        path: Path,
        instance: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        daily: bool = False,
    ) -> None:
        self.path = path
        self.instance = instance or uuid.uuid4().hex[:12]
        private_dir(path.parent, "audit log directory")
        self._key = _load_key(path.parent)
        self._fd = _open_append(path)
        self._clock = clock
        self._daily = daily
        self._day = path.name[len("events-") : -len(".jsonl")] if daily else ""
        self._failed = False
        self._queued: list[tuple[float, str, dict[str, Any], Mapping[str, Any] | None]] = []
        self._pid = os.getpid()
        self._flush_scheduled = False
        self._closed = False
        self._stamp_second = -1
        self._stamp_prefix = ""

    @classmethod
    def daily(
        cls, directory: Path, instance: str | None = None, *, clock: Callable[[], float] = time.time
    ) -> AuditLog:
        """A log rotating at midnight UTC, one file per day under `directory`."""
        now = dt.datetime.fromtimestamp(clock(), dt.UTC)
        return cls(default_log_path(now, directory), instance, clock=clock, daily=True)

    def argument_hash(self, arguments: Mapping[str, Any]) -> str:
        try:
            canonical = _canonical.encode(arguments)
        except (TypeError, ValueError):
            canonical = _canonical_fallback.encode(arguments).encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, canonical, hashlib.sha256).hex()[:32]

    def _stamp(self, at: float) -> str:
        """`at` as UTC ISO 8601 to the millisecond; the date and time part is formatted once a second."""
        second = int(at)
        if second != self._stamp_second:
            self._stamp_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamp_second = second
        return f"{self._stamp_prefix}.{min(999, int((at - second) * 1000)):03d}Z"

    def _write(self, event: str, fields: dict[str, Any], arguments: Mapping[str, Any] | None = None) -> None:
        # Only the time is taken now; formatting and hashing happen in `flush`, after forwarding.
        self._queued.append((self._clock(), event, fields, arguments))
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

    def _line(
        self, at: float, event: str, fields: dict[str, Any], arguments: Mapping[str, Any] | None
    ) -> bytes:
        record: dict[str, Any] = {"ts": self._stamp(at), "event": event}
        record["instance"], record["pid"] = self.instance, self._pid
        record.update(fields)
        if arguments is not None:
            record["args_hmac"] = self.argument_hash(arguments)
        try:
            line = _fast_record.encode(record)
            if line.isascii():
                return line + b"\n"
        except (TypeError, ValueError):
            pass
        return _record.encode(record).encode("ascii") + b"\n"

    def flush(self) -> None:
        """Write queued events (one `write`, so lines from several proxies never interleave)."""
        self._flush_scheduled = False
        if not self._queued or self._closed:
            return
        queued, self._queued = self._queued, []
        lines: list[bytes] = []
        for entry in queued:
            line = self._line(*entry)
            if self._daily and self._stamp_prefix[:10] != self._day:
                self._append(b"".join(lines))
                lines = []
                self._next_day(self._stamp_prefix[:10])
            lines.append(line)
        self._append(b"".join(lines))

    def _append(self, data: bytes) -> None:
        if not data:
            return
        try:
            os.write(self._fd, data)
        except OSError as exc:
            if not self._failed:
                log.error("cannot write audit log %s: %s", self.path, exc.strerror or exc)
                self._failed = True

    def _next_day(self, day: str) -> None:
        path = self.path.with_name(f"events-{day}.jsonl")
        try:
            fd = _open_append(path)
        except OSError as exc:  # keep writing to the old day's file rather than lose events
            log.error("cannot open audit log %s: %s", path, exc.strerror or exc)
            self._day = day
            return
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd, self.path, self._day = fd, path, day

    def startup(self, policy: str, summary: str, upstream: str, state: str, shadow: bool = False) -> None:
        """`upstream` should name the server executable only: its arguments may hold secrets."""
        fields: dict[str, Any] = {
            "version": __version__,
            "policy": policy,
            "summary": summary,
            "upstream": upstream,
            "state": state,
        }
        if shadow:
            fields["shadow"] = True
        self._write("startup", fields)

    def tool_call(
        self,
        tool: str,
        decision: str,
        rule: str,
        reason: str,
        arguments: Mapping[str, Any],
        would_deny: Sequence[Verdict] = (),
    ) -> None:
        fields: dict[str, Any] = {"tool": tool, "decision": decision, "rule": rule, "reason": reason}
        if would_deny:
            fields["would_deny"] = [{"rule": v.rule, "reason": v.reason} for v in would_deny]
        self._write("tool_call", fields, arguments)

    def approval(
        self,
        what: str,
        approval_id: str,
        tool: str,
        rule: str,
        arguments: Mapping[str, Any],
        detail: str = "",
    ) -> None:
        """A held call's approval was `requested`, `granted`, `denied` or `expired` (intercept.approvals)."""
        fields = {"approval": what, "id": approval_id, "tool": tool, "rule": rule}
        if detail:
            fields["detail"] = detail
        self._write("approval", fields, arguments)

    def pin_drift(self, fields: Mapping[str, Any]) -> None:
        """A pinned tool's listed definition no longer matches its pin (`intercept.pinning` gives the
        fields). Hashes only: the definition's text is untrusted."""
        self._write("pin_drift", dict(fields))

    def reload(self, ok: bool, policy: str, detail: str) -> None:
        self._write("reload", {"ok": ok, "policy": policy, "detail": detail})

    def shutdown(self, exit_status: int) -> None:
        self._write("shutdown", {"exit_status": exit_status})

    def close(self) -> None:
        self.flush()
        self._closed = True
        with contextlib.suppress(OSError):
            os.close(self._fd)
