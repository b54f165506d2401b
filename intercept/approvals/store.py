"""Where approvals live: the `ApprovalStore` contract, the in-process store, and `open_approvals`.

An approval moves from `pending` to exactly one of `granted`, `denied` (by a human) or
`expired` (by the proxy, at its timeout); a granted approval becomes `used` when its call runs.
Every move is atomic in the store, so a grant racing the timeout either wins (the call runs)
or loses (the grant is refused, the call is denied), never both. `--state sqlite` keeps
approvals in `approvals.sqlite3` beside the counters, `--state redis://...` under the same
key prefix, so `intercept approvals` from another terminal (or host, with Redis) reaches them;
`--state memory` keeps them in the proxy only, where no other process can decide them.
"""

from __future__ import annotations

import shlex
from typing import Protocol

from intercept.approvals.model import RETAIN_SECONDS, ApprovalRequest, Decision, Status
from intercept.state import DEFAULT_STATE_DIR, StateOptions

APPROVALS_DB = "approvals.sqlite3"


class ApprovalStore(Protocol):
    display: str
    shared: bool
    """True if other processes (`intercept approvals`) can reach it."""

    async def create(self, request: ApprovalRequest) -> None: ...

    async def get(self, approval_id: str) -> ApprovalRequest | None: ...

    async def decide(self, approval_id: str, decision: Decision, now: float) -> Status | None:
        """Move a pending, unexpired approval to `decision`; the status afterwards (None: no such id)."""
        ...

    async def expire(self, approval_id: str) -> bool:
        """Move a pending approval to `expired`; False if it was no longer pending."""
        ...

    async def consume(self, request: ApprovalRequest) -> bool:
        """Move the granted approval `request.id` to `used` if it binds the same call; True if it did."""
        ...

    async def pending(self, now: float) -> list[ApprovalRequest]:
        """Pending, unexpired approvals, oldest first."""
        ...

    async def close(self) -> None: ...


class MemoryApprovals:
    """Approvals in this process only (`--state memory`): elicitation can decide them, the CLI cannot."""

    display = "memory"
    shared = False

    def __init__(self) -> None:
        self._items: dict[str, ApprovalRequest] = {}

    async def create(self, request: ApprovalRequest) -> None:
        now = request.created
        for key in [k for k, v in self._items.items() if v.expires + RETAIN_SECONDS < now]:
            del self._items[key]
        self._items[request.id] = request

    async def get(self, approval_id: str) -> ApprovalRequest | None:
        return self._items.get(approval_id)

    async def decide(self, approval_id: str, decision: Decision, now: float) -> Status | None:
        item = self._items.get(approval_id)
        if item is None or item.status != "pending":
            return item.status if item else None
        if now >= item.expires:
            return "expired"
        self._items[approval_id] = item.with_status(decision)
        return decision

    async def expire(self, approval_id: str) -> bool:
        item = self._items.get(approval_id)
        if item is None or item.status != "pending":
            return False
        self._items[approval_id] = item.with_status("expired")
        return True

    async def consume(self, request: ApprovalRequest) -> bool:
        item = self._items.get(request.id)
        if item is None or item.status != "granted" or not item.binds(request):
            return False
        self._items[request.id] = item.with_status("used")
        return True

    async def pending(self, now: float) -> list[ApprovalRequest]:
        items = [v for v in self._items.values() if v.status == "pending" and v.expires > now]
        return sorted(items, key=lambda v: v.created)

    async def close(self) -> None:
        return None


def open_approvals(options: StateOptions) -> ApprovalStore:
    """The approval store beside the counter store `options` names; ValueError or StateError."""
    if options.spec == "memory":
        return MemoryApprovals()
    if options.spec == "sqlite":
        from intercept.approvals.sqlite_store import SqliteApprovals

        return SqliteApprovals((options.state_dir or DEFAULT_STATE_DIR).expanduser() / APPROVALS_DB)
    from intercept.approvals.redis_store import RedisApprovals
    from intercept.state.redis import DEFAULT_PREFIX, is_redis_dsn

    if not is_redis_dsn(options.spec):
        shown = options.spec.split(":", 1)[0]
        raise ValueError(f"unknown --state {shown!r}: use memory, sqlite, or a redis:// URL")
    return RedisApprovals.from_dsn(options.spec, options.prefix or DEFAULT_PREFIX)


def cli_options(options: StateOptions) -> str:
    """The `intercept approvals` options that reach the store `options` names (a password redacted)."""
    parts: list[str] = []
    if options.spec == "sqlite" and options.state_dir is not None:
        parts.append(f"--state-dir {shlex.quote(str(options.state_dir))}")
    elif options.spec not in {"sqlite", "memory"}:
        from intercept.state.redis import redact_dsn

        parts.append(f"--state {shlex.quote(redact_dsn(options.spec))}")
        if options.prefix:
            parts.append(f"--state-prefix {shlex.quote(options.prefix)}")
    return " ".join(parts)
