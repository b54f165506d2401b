"""Durable counter store in SQLite (the default), shared exactly by proxies on one machine.

The database lives at `<state dir>/counters.sqlite3` (default `~/.intercept/state`), in WAL
mode. A reserve is one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before
reading, so two processes can never both admit the last call under a limit. Counters survive
a restart (WAL with `synchronous=NORMAL` is durable against process crashes; a power loss may
lose the last few increments, so after a power cut a window may admit a few calls more than
its limit).

Layout: sliding windows keep one row per admitted increment (`sliding_event`, clustered by
counter and time) plus a running total (`sliding_total`) trimmed as events expire. A rate
limit's total only shrinks as events expire, so when the untrimmed total already admits the
call, so does the exact one: a reserve then skips the trim (one statement and a dirty page
fewer), trimming each counter at least once a second to bound the table, and always before a
refusal, which is decided on the exact total; calendar
windows keep one row per counter and bucket (`calendar_count`). Reservations not yet
committed are remembered in this process only (a commit costs no I/O); a rollback deletes
exactly the rows its reserve added.

Statements run synchronously on the event loop: a reserve takes tens of microseconds, less
than a thread hop would. New databases use 1 KiB pages, which makes each commit's WAL write cheaper.
A transaction blocked by another process waits at most `BUSY_TIMEOUT_MS` and then raises
StateError, and the proxy applies `--state-fail-mode`.

The counters decide what runs, so their files must be this user's alone: the directory and every
file SQLite uses (`counters.sqlite3`, `-wal`, `-shm`, `-journal`) are checked before SQLite
opens them (`intercept.util.fsutil`), and a file another user owns or can write refuses the
store. The database is created 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm`
the database's mode), under a 077 umask, and every file is checked and made 0600 afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from intercept.state.base import (
    CounterCheck,
    Refusal,
    Reservation,
    StateError,
    WindowKind,
    calendar_bucket,
    first_refusal,
)
from intercept.util.fsutil import UnsafeFile, check_private_path, private_dir

DB_FILENAME = "counters.sqlite3"
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")
"""The database and the files SQLite keeps next to it."""
BUSY_TIMEOUT_MS = 2000
PAGE_SIZE = 1024
WAL_AUTOCHECKPOINT_PAGES = 10_000
"""Checkpoint (two fsyncs) every ~10 MB of WAL instead of SQLite's 1,000 pages: reserves rewrite
the same few pages, so a checkpoint copies little either way and the fsyncs dominate."""
LAZY_TRIM_SECONDS = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sliding_event (
    key TEXT NOT NULL, window INTEGER NOT NULL, at REAL NOT NULL, seq INTEGER NOT NULL, amount REAL NOT NULL,
    PRIMARY KEY (key, window, at, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sliding_total (
    key TEXT NOT NULL, window INTEGER NOT NULL, total REAL NOT NULL, PRIMARY KEY (key, window)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calendar_count (
    key TEXT NOT NULL, window INTEGER NOT NULL, bucket INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (key, window, bucket)
) WITHOUT ROWID;
"""

_TRIM = "DELETE FROM sliding_event WHERE key = ? AND window = ? AND at <= ? RETURNING amount"
_SUBTRACT = "UPDATE sliding_total SET total = total - ? WHERE key = ? AND window = ?"
_TOTAL = "SELECT total FROM sliding_total WHERE key = ? AND window = ?"
_ADD_EVENT = "INSERT INTO sliding_event (key, window, at, seq, amount) VALUES (?, ?, ?, ?, ?)"
_ADD_TOTAL = (
    "INSERT INTO sliding_total (key, window, total) VALUES (?, ?, ?) "
    "ON CONFLICT (key, window) DO UPDATE SET total = total + excluded.total"
)
_DROP_EVENT = "DELETE FROM sliding_event WHERE key = ? AND window = ? AND at = ? AND seq = ?"
_COUNT = "SELECT value FROM calendar_count WHERE key = ? AND window = ? AND bucket = ?"
_DROP_OLD_BUCKETS = "DELETE FROM calendar_count WHERE key = ? AND window = ? AND bucket < ?"
_ADD_COUNT = (
    "INSERT INTO calendar_count (key, window, bucket, value) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key, window, bucket) DO UPDATE SET value = value + excluded.value"
)
_UNDO_COUNT = "UPDATE calendar_count SET value = value - ? WHERE key = ? AND window = ? AND bucket = ?"


class SqliteStore:
    """`CounterStore` on one SQLite file; see `intercept.state.base` for the contract."""

    eager_safe = True
    """Its coroutines never suspend, so the relay may run them outside a task (faster)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = f"sqlite:{path}"
        # token -> the `seq` of each sliding event the reservation added (None for calendar checks)
        self._pending: dict[str, tuple[int | None, ...]] = {}
        # Tokens only name reservations inside this process; event seqs only need to differ from
        # other processes' at the same instant. Both come from a seeded generator, not a syscall each.
        self._tokens = itertools.count()
        self._seqs = random.Random(secrets.randbits(128))
        self._trimmed_at: dict[tuple[str, int], float] = {}
        try:
            private_dir(path.parent, "state directory")
            files = [path.with_name(path.name + suffix) for suffix in SQLITE_SUFFIXES]
            for file in files:
                check_private_path(file, "state file")
            umask = os.umask(0o077)
            try:
                with contextlib.suppress(FileExistsError):  # another proxy may create it first
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
                self._db = self._connect(path)
            finally:
                os.umask(umask)
            for file in files:  # older versions, or another proxy, may have left them readable
                if check_private_path(file, "state file"):
                    os.chmod(file, 0o600)
        except UnsafeFile as exc:
            raise StateError(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open state database {path}: {exc}") from None

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Small pages make each commit's WAL frames cheaper to write (new databases only).
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        db.executescript(_SCHEMA)
        return db

    @classmethod
    def in_directory(cls, directory: Path) -> SqliteStore:
        return cls(directory / DB_FILENAME)

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading; any SQLite failure becomes StateError."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def _current(self, check: CounterCheck, now: float, exact: bool = True) -> float | None:
        """The counter's value in the window of `now`; None if it has no row there yet.

        With `exact=False` a rate limit's total may include expired events (see the module
        docstring): an upper bound, good enough to admit a call but not to refuse one.
        """
        db, key, window = self._db, check.key, check.window_seconds
        if check.kind == "calendar":
            row = db.execute(_COUNT, (key, window, calendar_bucket(now, window))).fetchone()
            return float(row[0]) if row else None
        trimmed_at = self._trimmed_at.get((key, window))
        if exact or trimmed_at is None or not 0.0 <= now - trimmed_at < LAZY_TRIM_SECONDS:
            expired = db.execute(_TRIM, (key, window, now - window)).fetchall()
            if expired:
                db.execute(_SUBTRACT, (sum(amount for (amount,) in expired), key, window))
            self._trimmed_at[(key, window)] = now
        row = db.execute(_TOTAL, (key, window)).fetchone()
        return float(row[0]) if row else None

    def _apply(self, check: CounterCheck, now: float, fresh: bool) -> int | None:
        db, key, window, inc = self._db, check.key, check.window_seconds, check.increment
        if check.kind == "calendar":
            bucket = calendar_bucket(now, window)
            if fresh:  # first increment in a new window: drop the old windows' rows
                db.execute(_DROP_OLD_BUCKETS, (key, window, bucket))
            db.execute(_ADD_COUNT, (key, window, bucket, inc))
            return None
        seq = self._seqs.getrandbits(62)
        db.execute(_ADD_EVENT, (key, window, now, seq, inc))
        db.execute(_ADD_TOTAL, (key, window, inc))
        return seq

    def _project(
        self, checks: tuple[CounterCheck, ...], now: float, exact: bool
    ) -> tuple[list[float], list[bool]]:
        """Each check's projected value, and whether its counter has no row in the window yet."""
        pending: dict[tuple[str, str, int], float] = {}
        fresh: list[bool] = []
        projections: list[float] = []
        for check in checks:
            cid = (check.key, check.kind, check.window_seconds)
            bound_ok = check.op in ("lt", "lte") and check.increment >= 0
            current = self._current(check, now, exact or not bound_ok)
            fresh.append(current is None)
            projections.append((current or 0.0) + pending.get(cid, 0.0) + check.increment)
            pending[cid] = pending.get(cid, 0.0) + check.increment
        return projections, fresh

    def _try_reserve(self, checks: tuple[CounterCheck, ...], now: float) -> Refusal | tuple[int | None, ...]:
        projections, fresh = self._project(checks, now, exact=False)
        if first_refusal(checks, projections) is not None:
            projections, fresh = self._project(checks, now, exact=True)
            refusal = first_refusal(checks, projections)
            if refusal is not None:
                return refusal  # the trimming done while reading is kept
        return tuple(self._apply(check, now, is_fresh) for check, is_fresh in zip(checks, fresh, strict=True))

    async def reserve(self, checks: Sequence[CounterCheck], now: float) -> Reservation | Refusal:
        checks = tuple(checks)
        token = str(next(self._tokens))
        if not checks:
            return Reservation(token, checks, now)
        with self._immediate():
            outcome = self._try_reserve(checks, now)
        if isinstance(outcome, Refusal):
            return outcome
        self._pending[token] = outcome
        return Reservation(token, checks, now)

    async def commit(self, reservation: Reservation) -> None:
        self._pending.pop(reservation.token, None)

    async def rollback(self, reservation: Reservation) -> None:
        seqs = self._pending.get(reservation.token)
        if seqs is None:
            return
        at = reservation.at
        with self._immediate() as db:
            for check, seq in zip(reservation.checks, seqs, strict=True):
                key, window, inc = check.key, check.window_seconds, check.increment
                if seq is None:
                    db.execute(_UNDO_COUNT, (inc, key, window, calendar_bucket(at, window)))
                # An event already trimmed out of its window was subtracted by the trim.
                elif db.execute(_DROP_EVENT, (key, window, at, seq)).rowcount:
                    db.execute(_SUBTRACT, (inc, key, window))
        del self._pending[reservation.token]

    async def value(self, key: str, kind: WindowKind, window_seconds: int, now: float) -> float:
        with self._immediate():
            return self._current(CounterCheck(key, kind, window_seconds), now) or 0.0

    async def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
