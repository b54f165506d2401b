"""Durable counter store in SQLite (the default), shared exactly by proxies on one machine.

The database lives at `<state dir>/counters.sqlite3` (default `~/.intercept/state`), in WAL
mode. A reserve is one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before
reading, so two processes can never both admit the last call under a limit. Counters survive
a restart (WAL with `synchronous=NORMAL` is durable against process crashes; a power loss may
lose the last few increments, which errs on the side of admitting fewer calls, never more).

Statements run synchronously on the event loop: each transaction takes tens of microseconds,
far less than a thread hop would. A transaction blocked by another process waits at most
`BUSY_TIMEOUT_MS` and then raises StateError, and the proxy applies `--state-fail-mode`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from intercept.state.base import CounterCheck, Refusal, Reservation, StateError, WindowKind, calendar_bucket

DB_FILENAME = "counters.sqlite3"
BUSY_TIMEOUT_MS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sliding_entry (
    key TEXT NOT NULL, window INTEGER NOT NULL, at REAL NOT NULL, amount REAL NOT NULL,
    token TEXT NOT NULL, idx INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sliding_entry_by_time ON sliding_entry (key, window, at);
CREATE INDEX IF NOT EXISTS sliding_entry_by_token ON sliding_entry (token);
CREATE TABLE IF NOT EXISTS sliding_total (
    key TEXT NOT NULL, window INTEGER NOT NULL, total REAL NOT NULL, PRIMARY KEY (key, window)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS calendar_count (
    key TEXT NOT NULL, window INTEGER NOT NULL, bucket INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (key, window, bucket)
) WITHOUT ROWID;
"""


class SqliteStore:
    """`CounterStore` on one SQLite file; see `intercept.state.base` for the contract."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = f"sqlite:{path}"
        self._pending: set[str] = set()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
            os.chmod(path, 0o600)
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open state database {path}: {exc}") from None

    @classmethod
    def in_directory(cls, directory: Path) -> SqliteStore:
        return cls(directory / DB_FILENAME)

    def _current(self, check: CounterCheck, now: float) -> float:
        db, key, window = self._db, check.key, check.window_seconds
        if check.kind == "calendar":
            bucket = calendar_bucket(now, window)
            row = db.execute(
                "SELECT value FROM calendar_count WHERE key = ? AND window = ? AND bucket = ?",
                (key, window, bucket),
            ).fetchone()
            return float(row[0]) if row else 0.0
        cutoff = now - window
        removed, count = db.execute(
            "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM sliding_entry"
            " WHERE key = ? AND window = ? AND at <= ?",
            (key, window, cutoff),
        ).fetchone()
        if count:
            db.execute(
                "DELETE FROM sliding_entry WHERE key = ? AND window = ? AND at <= ?", (key, window, cutoff)
            )
            db.execute(
                "UPDATE sliding_total SET total = total - ? WHERE key = ? AND window = ?",
                (removed, key, window),
            )
        row = db.execute(
            "SELECT total FROM sliding_total WHERE key = ? AND window = ?", (key, window)
        ).fetchone()
        return float(row[0]) if row else 0.0

    def _apply(self, check: CounterCheck, now: float, token: str, idx: int) -> None:
        db, key, window, inc = self._db, check.key, check.window_seconds, check.increment
        if check.kind == "calendar":
            bucket = calendar_bucket(now, window)
            db.execute(
                "DELETE FROM calendar_count WHERE key = ? AND window = ? AND bucket < ?",
                (key, window, bucket),
            )
            db.execute(
                "INSERT INTO calendar_count (key, window, bucket, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key, window, bucket) DO UPDATE SET value = value + excluded.value",
                (key, window, bucket, inc),
            )
            return
        db.execute(
            "INSERT INTO sliding_entry (key, window, at, amount, token, idx) VALUES (?, ?, ?, ?, ?, ?)",
            (key, window, now, inc, token, idx),
        )
        db.execute(
            "INSERT INTO sliding_total (key, window, total) VALUES (?, ?, ?) "
            "ON CONFLICT (key, window) DO UPDATE SET total = total + excluded.total",
            (key, window, inc),
        )

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

    def _try_reserve(self, checks: tuple[CounterCheck, ...], now: float, token: str) -> Refusal | None:
        pending: dict[tuple[str, str, int], float] = {}
        for index, check in enumerate(checks):
            cid = (check.key, check.kind, check.window_seconds)
            projected = self._current(check, now) + pending.get(cid, 0.0) + check.increment
            if not check.admits(projected):
                return Refusal(index, projected)  # the trimming done while reading is kept
            pending[cid] = pending.get(cid, 0.0) + check.increment
        for index, check in enumerate(checks):
            self._apply(check, now, token, index)
        return None

    async def reserve(self, checks: Sequence[CounterCheck], now: float) -> Reservation | Refusal:
        checks = tuple(checks)
        token = uuid.uuid4().hex
        if not checks:
            return Reservation(token, checks, now)
        with self._immediate():
            refusal = self._try_reserve(checks, now, token)
        if refusal is not None:
            return refusal
        self._pending.add(token)
        return Reservation(token, checks, now)

    async def commit(self, reservation: Reservation) -> None:
        self._pending.discard(reservation.token)

    async def rollback(self, reservation: Reservation) -> None:
        if reservation.token not in self._pending:
            return
        with self._immediate() as db:
            for index, check in enumerate(reservation.checks):
                key, window, inc = check.key, check.window_seconds, check.increment
                if check.kind == "calendar":
                    db.execute(
                        "UPDATE calendar_count SET value = value - ?"
                        " WHERE key = ? AND window = ? AND bucket = ?",
                        (inc, key, window, calendar_bucket(reservation.at, window)),
                    )
                    continue
                gone = db.execute(
                    "DELETE FROM sliding_entry WHERE token = ? AND idx = ? AND key = ? AND window = ?",
                    (reservation.token, index, key, window),
                ).rowcount
                if gone:
                    db.execute(
                        "UPDATE sliding_total SET total = total - ? WHERE key = ? AND window = ?",
                        (inc, key, window),
                    )
        self._pending.discard(reservation.token)

    async def value(self, key: str, kind: WindowKind, window_seconds: int, now: float) -> float:
        with self._immediate():
            return self._current(CounterCheck(key, kind, window_seconds), now)

    async def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
