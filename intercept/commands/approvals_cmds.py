"""`intercept approvals list|grant|deny`: decide held calls from another terminal (or host, with Redis).

They reach the approvals through the same state store `intercept run` uses (`--state`,
`--state-dir`, `--state-prefix`, as for `intercept run`). Exit statuses: 0 done, 1 the approval
is unknown, already decided or expired, or the store cannot be opened; 2 a usage error.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import click

from intercept.approvals.model import ApprovalRequest, Decision
from intercept.approvals.store import ApprovalStore, MemoryApprovals, open_approvals
from intercept.state import StateOptions
from intercept.state.base import StateError

EXIT_FAILED = 1
EXIT_USAGE = 2


def _state_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "--state-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Directory of the SQLite state (default ~/.intercept/state), as given to `intercept run`.",
    )(func)
    func = click.option(
        "--state-prefix",
        default=None,
        metavar="PREFIX",
        help="Key prefix in Redis (default: intercept), as given to `intercept run`.",
    )(func)
    return click.option(
        "--state",
        "state",
        default="sqlite",
        show_default=True,
        metavar="BACKEND",
        help="The state store of the proxy holding the calls: sqlite or redis://[user:password@]host:port/db.",
    )(func)


def _fail(message: str, status: int = EXIT_FAILED) -> None:
    click.echo(f"intercept approvals: {message}", err=True)
    sys.exit(status)


def _open(state: str, state_dir: Path | None, state_prefix: str | None) -> ApprovalStore:
    try:
        store = open_approvals(StateOptions(spec=state, state_dir=state_dir, prefix=state_prefix))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except StateError as exc:
        _fail(str(exc))
        raise AssertionError from None  # _fail exits
    if isinstance(store, MemoryApprovals):
        raise click.UsageError("--state memory lives inside one proxy; use sqlite or redis:// to reach it")
    return store


def _render(item: ApprovalRequest, now: float) -> str:
    return (
        f"{item.id}  tool {item.tool!r} on {item.server!r}  rule: {item.rule}  "
        f"expires in {max(0.0, item.expires - now):.0f} s\n{item.summary}\n"
    )


@click.group()
def approvals() -> None:
    """List, grant or deny tool calls held by `action: require_approval` rules."""


@approvals.command("list")
@_state_options
def list_cmd(state: str, state_dir: Path | None, state_prefix: str | None) -> None:
    """Show the calls waiting for approval, with their arguments (escaped, shortened)."""

    async def go() -> list[ApprovalRequest]:
        store = _open(state, state_dir, state_prefix)
        try:
            return await store.pending(time.time())
        finally:
            await store.close()

    try:
        items = asyncio.run(go())
    except StateError as exc:
        _fail(str(exc))
    now = time.time()
    if not items:
        click.echo("no calls are waiting for approval")
    for item in items:
        click.echo(_render(item, now))


def _decide(
    decision: Decision, approval_id: str, state: str, state_dir: Path | None, prefix: str | None
) -> None:
    async def go() -> str | None:
        store = _open(state, state_dir, prefix)
        try:
            return await store.decide(approval_id, decision, time.time())
        finally:
            await store.close()

    try:
        status = asyncio.run(go())
    except StateError as exc:
        _fail(str(exc))
    if status is None:
        _fail(f"no approval {approval_id!r} in this state store (see `intercept approvals list`)")
    if status != decision:
        _fail(f"approval {approval_id} is already {status}; nothing was changed")
    click.echo(f"approval {approval_id} {decision}")


@approvals.command()
@click.argument("approval_id", metavar="ID")
@_state_options
def grant(approval_id: str, state: str, state_dir: Path | None, state_prefix: str | None) -> None:
    """Let the held call ID run, once, with exactly the arguments it was held with."""
    _decide("granted", approval_id, state, state_dir, state_prefix)


@approvals.command()
@click.argument("approval_id", metavar="ID")
@_state_options
def deny(approval_id: str, state: str, state_dir: Path | None, state_prefix: str | None) -> None:
    """Refuse the held call ID: the agent gets a policy denial."""
    _decide("denied", approval_id, state, state_dir, state_prefix)


COMMANDS = [approvals]
