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
On the loop SQLite never waits for a lock (busy timeout 0): a transaction that finds the write
lock held by another connection (SQLITE_BUSY) is rolled back and handed whole to this store's one
worker thread, which waits at most `BUSY_TIMEOUT_MS` for the lock and then raises StateError, and
the proxy applies `--state-fail-mode`. Meanwhile the event loop goes on: other sessions, and calls
without counters, are not held up by another process's lock. While the worker has anything to do,
every later operation of this store goes to it too, in order, so the connection is only ever used
by one thread at a time. A rollback whose caller is cancelled while it waits still completes in
the worker; a reserve whose caller is gone is rolled back instead of committed (or, if it was
committed just before, undone right after), as its call is never forwarded.

The counters decide what runs, so their files must be this user's alone: the directory and every
file SQLite uses (`counters.sqlite3`, `-wal`, `-shm`, `-journal`) are checked before SQLite
opens them (`intercept.util.fsutil`), and a file another user owns or can write refuses the
store. The database is created 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm`
the database's mode), under a 077 umask, and every file is checked and made 0600 afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import itertools
import logging
import os
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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
"""How long the worker thread waits for another connection's write lock before StateError."""
SQLITE_BUSY = 5
PAGE_SIZE = 1024
WAL_AUTOCHECKPOINT_PAGES = 10_000
"""Checkpoint (two fsyncs) every ~10 MB of WAL instead of SQLite's 1,000 pages: reserves rewrite
the same few pages, so a checkpoint copies little either way and the fsyncs dominate."""
LAZY_TRIM_SECONDS = 1.0

log = logging.getLogger(__name__)

T = TypeVar("T")
Seqs = tuple[int | None, ...]
"""The `seq` of each sliding event a reservation added (None for a calendar check)."""


class _Busy(Exception):
    """The write lock is held elsewhere; the transaction was rolled back and may be retried."""


class _Abandoned(Exception):
    """The caller stopped waiting before the worker committed; the transaction was rolled back."""


@dataclass(eq=False)
class _Job:
    """An operation handed to the worker whose caller may stop waiting for it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    abandoned: bool = False
    committed: bool = False

    def abandon(self) -> bool:
        """The caller stops waiting: the worker will not commit. True if it already has."""
        with self.lock:
            self.abandoned = True
            return self.committed


class _Locked(enum.Enum):
    """What `_on_loop` returns when it did nothing: the operation must go to the worker."""

    LOCKED = enum.auto()


LOCKED = _Locked.LOCKED


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
    """Its coroutines suspend only when the database is locked, and then only on the worker's
    future, which needs no current task: the relay may start them outside a task (faster)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = f"sqlite:{path}"
        self._pending: dict[str, Seqs] = {}
        """token -> what the reservation added, until it is committed or rolled back."""
        self._worker: ThreadPoolExecutor | None = None
        self._queued = 0
        """Operations handed to the worker and not finished yet; while any is, the loop keeps off
        the connection and queues behind them."""
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

    @classmethod
    def _connect(cls, path: Path) -> sqlite3.Connection:
        """Open and set up the database, retrying while another proxy is setting it up too.

        Two processes converting a new database to WAL, or creating its tables, at once can get
        SQLITE_BUSY without the busy handler being called (SQLite refuses at once where waiting
        could deadlock), so the whole setup is retried until the busy timeout has passed.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return cls._set_up(path)
            except sqlite3.OperationalError as exc:
                busy = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    @staticmethod
    def _set_up(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            # Opening waits for another proxy's lock like the worker does; the loop never waits after.
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Small pages make each commit's WAL frames cheaper to write (new databases only).
            db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            db.executescript(_SCHEMA)
            db.execute("PRAGMA busy_timeout = 0")
        except BaseException:
            db.close()
            raise
        return db

    @classmethod
    def in_directory(cls, directory: Path) -> SqliteStore:
        return cls(directory / DB_FILENAME)

    @contextlib.contextmanager
    def _immediate(self, busy_is_final: bool = True, job: _Job | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken before reading; a SQLite failure becomes StateError, or
        _Busy when the lock is held elsewhere and `busy_is_final` is False. The transaction is
        rolled back on any failure, and instead of committing if `job` was abandoned meanwhile."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                if job is None:
                    db.execute("COMMIT")
                else:
                    with job.lock:
                        if job.abandoned:
                            raise _Abandoned
                        db.execute("COMMIT")
                        job.committed = True
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            if not busy_is_final and (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_BUSY:
                raise _Busy from None
            raise StateError(f"state database {self.path}: {exc}") from None

    def _waiting_for_lock(self, operation: Callable[[], T], job: _Job | None) -> T:
        """In the worker thread: `operation` in one transaction, waiting for the lock if need be."""
        db = self._db
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            try:
                with self._immediate(job=job):
                    return operation()
            finally:
                db.execute("PRAGMA busy_timeout = 0")
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def _on_loop(self, operation: Callable[..., T], *args: Any) -> T | _Locked:
        """`operation(*args)` in one write transaction on the loop, without waiting for a lock;
        LOCKED (nothing done) when the lock is held elsewhere or the worker has work queued."""
        if self._queued:
            return LOCKED
        try:
            with self._immediate(busy_is_final=False):
                return operation(*args)
        except _Busy:
            return LOCKED

    async def _in_worker(
        self,
        operation: Callable[..., T],
        *args: Any,
        abandoned: Callable[[asyncio.Future[T]], None] | None = None,
    ) -> T:
        """`operation(*args)` in one write transaction in the worker thread, after what is queued.

        With `abandoned`, a caller that stops waiting calls the operation off: the worker rolls
        it back instead of committing, or, if it was committed already, `abandoned` gets its
        future. Without, the worker runs it all the same."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="intercept-sqlite")
        job = _Job() if abandoned is not None else None
        self._queued += 1
        future = asyncio.get_running_loop().run_in_executor(
            self._worker, self._waiting_for_lock, functools.partial(operation, *args), job
        )
        future.add_done_callback(self._worker_done)
        try:
            return await asyncio.shield(future)
        except BaseException:  # cancelled, or closed while started outside a task (FdChannel.pump)
            if job is not None and abandoned is not None and job.abandon():
                future.add_done_callback(abandoned)
            raise

    def _worker_done(self, _future: asyncio.Future[T]) -> None:
        self._queued -= 1

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

    def _try_reserve(self, checks: tuple[CounterCheck, ...], now: float) -> Refusal | Seqs:
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
        on_loop = self._on_loop(self._try_reserve, checks, now)
        if isinstance(on_loop, _Locked):
            abandoned = functools.partial(self._abandoned, checks, now)
            outcome = await self._in_worker(self._try_reserve, checks, now, abandoned=abandoned)
        else:
            outcome = on_loop
        if isinstance(outcome, Refusal):
            return outcome
        self._pending[token] = outcome
        return Reservation(token, checks, now)

    def _abandoned(
        self, checks: tuple[CounterCheck, ...], now: float, future: asyncio.Future[Refusal | Seqs]
    ) -> None:
        """A reserve committed after its caller stopped waiting: its call is never forwarded, so
        what it added is given back (until then it counts, as a call in flight does)."""
        if future.cancelled() or future.exception() is not None:
            return
        seqs = future.result()
        if isinstance(seqs, Refusal):
            return
        undo = asyncio.ensure_future(self._in_worker(self._undo, Reservation("", checks, now), seqs))
        undo.add_done_callback(_log_failure)

    async def commit(self, reservation: Reservation) -> None:
        self._pending.pop(reservation.token, None)

    async def rollback(self, reservation: Reservation) -> None:
        # Taken out first, so a rollback cancelled while the worker runs it is never applied twice.
        seqs = self._pending.pop(reservation.token, None)
        if seqs is None:
            return
        try:
            if isinstance(self._on_loop(self._undo, reservation, seqs), _Locked):
                await self._in_worker(self._undo, reservation, seqs)
        except StateError:
            self._pending[reservation.token] = seqs
            raise

    def _undo(self, reservation: Reservation, seqs: Seqs) -> None:
        db, at = self._db, reservation.at
        for check, seq in zip(reservation.checks, seqs, strict=True):
            key, window, inc = check.key, check.window_seconds, check.increment
            if seq is None:
                db.execute(_UNDO_COUNT, (inc, key, window, calendar_bucket(at, window)))
            # An event already trimmed out of its window was subtracted by the trim.
            elif db.execute(_DROP_EVENT, (key, window, at, seq)).rowcount:
                db.execute(_SUBTRACT, (inc, key, window))

    async def value(self, key: str, kind: WindowKind, window_seconds: int, now: float) -> float:
        check = CounterCheck(key, kind, window_seconds)
        value = self._on_loop(self._current, check, now)
        if isinstance(value, _Locked):
            value = await self._in_worker(self._current, check, now)
        return value or 0.0

    async def close(self) -> None:
        if self._worker is not None:
            # What is queued (an abandoned reserve's undo, say) still runs before the database closes.
            await asyncio.to_thread(self._worker.shutdown)
        with contextlib.suppress(sqlite3.Error):
            self._db.close()


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.error("counter store could not give back an abandoned reservation: %s", exc)
