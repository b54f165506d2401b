"""Approvals in SQLite: `approvals.sqlite3` beside the counters, shared by every process of this user.

One table, one row per approval. Each change of status is one conditional UPDATE (`WHERE
status = 'pending'`, and for a grant or denial, not yet expired), so a grant racing the timeout
is decided by SQLite's write lock. Files are checked and created as the counter store's are
(this user's alone, 0600 in a 0700 directory). Statements are short and run on the event loop;
a lock held elsewhere waits at most `BUSY_TIMEOUT_MS`, then fails as StateError (fail closed).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import astuple
from pathlib import Path
from typing import Any

from intercept.approvals.model import RETAIN_SECONDS, ApprovalRequest, Decision, Status
from intercept.state.base import StateError
from intercept.util.fsutil import UnsafeFile, check_private_path, private_dir

BUSY_TIMEOUT_MS = 2000
_FIELDS = "id, tool, args_hash, policy_version, session, rule, server, summary, created, expires, status"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS approval (
    id TEXT PRIMARY KEY, tool TEXT NOT NULL, args_hash TEXT NOT NULL, policy_version TEXT NOT NULL,
    session TEXT NOT NULL, rule TEXT NOT NULL, server TEXT NOT NULL, summary TEXT NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL, status TEXT NOT NULL
);
"""


class SqliteApprovals:
    shared = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = f"sqlite:{path}"
        files = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
        try:
            private_dir(path.parent, "state directory")
            for file in files:
                check_private_path(file, "approvals file")
            umask = os.umask(0o077)
            try:
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
                self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.executescript(_SCHEMA)
            finally:
                os.umask(umask)
        except UnsafeFile as exc:
            raise StateError(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open approvals database {path}: {exc}") from None

    def _run(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StateError(f"approvals database {self.path}: {exc}") from None

    async def create(self, request: ApprovalRequest) -> None:
        self._run("DELETE FROM approval WHERE expires < ?", (request.created - RETAIN_SECONDS,))
        self._run(
            f"INSERT INTO approval ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            astuple(request),
        )

    async def get(self, approval_id: str) -> ApprovalRequest | None:
        row = self._run(f"SELECT {_FIELDS} FROM approval WHERE id = ?", (approval_id,)).fetchone()
        return ApprovalRequest(*row) if row else None

    async def decide(self, approval_id: str, decision: Decision, now: float) -> Status | None:
        changed = self._run(
            "UPDATE approval SET status = ? WHERE id = ? AND status = 'pending' AND expires > ?",
            (decision, approval_id, now),
        ).rowcount
        if changed:
            return decision
        current = await self.get(approval_id)
        if current is None:
            return None
        return "expired" if current.status == "pending" else current.status

    async def expire(self, approval_id: str) -> bool:
        sql = "UPDATE approval SET status = 'expired' WHERE id = ? AND status = 'pending'"
        return bool(self._run(sql, (approval_id,)).rowcount)

    async def consume(self, request: ApprovalRequest) -> bool:
        r = request
        sql = (
            "UPDATE approval SET status = 'used' WHERE id = ? AND status = 'granted' AND tool = ? "
            "AND args_hash = ? AND policy_version = ? AND session = ?"
        )
        return bool(self._run(sql, (r.id, r.tool, r.args_hash, r.policy_version, r.session)).rowcount)

    async def pending(self, now: float) -> list[ApprovalRequest]:
        sql = f"SELECT {_FIELDS} FROM approval WHERE status = 'pending' AND expires > ? ORDER BY created"
        return [ApprovalRequest(*row) for row in self._run(sql, (now,)).fetchall()]

    async def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
