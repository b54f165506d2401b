"""The approval stores' transitions (memory and SQLite here; Redis in tests/e2e/test_proxy_approvals.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from intercept.approvals.model import ApprovalRequest
from intercept.approvals.sqlite_store import SqliteApprovals
from intercept.approvals.store import ApprovalStore, MemoryApprovals, cli_options
from intercept.state import StateOptions

NOW = 1_764_115_200.0


def request(approval_id: str = "a1", **changes: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "id": approval_id,
        "tool": "t",
        "args_hash": "h",
        "policy_version": "v",
        "session": "s",
        "rule": "r",
        "server": "srv",
        "summary": '  "x": 1',
        "created": NOW,
        "expires": NOW + 60,
    }
    fields.update(changes)
    return ApprovalRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ApprovalStore:
    if request.param == "memory":
        return MemoryApprovals()
    return SqliteApprovals(tmp_path / "state" / "approvals.sqlite3")


async def test_grant_then_consume_once(store: ApprovalStore) -> None:
    await store.create(request())
    assert [a.id for a in await store.pending(NOW)] == ["a1"]
    assert await store.decide("a1", "granted", NOW + 1) == "granted"
    assert await store.pending(NOW) == []
    assert await store.consume(request())
    assert not await store.consume(request())  # used once
    assert await store.decide("a1", "denied", NOW + 2) == "used"


@pytest.mark.parametrize("field", ["tool", "args_hash", "policy_version", "session"])
async def test_a_grant_binds_one_call(store: ApprovalStore, field: str) -> None:
    await store.create(request())
    await store.decide("a1", "granted", NOW + 1)
    assert not await store.consume(request(**{field: "other"}))
    assert await store.consume(request())


async def test_expiry_races_a_grant_exactly_once(store: ApprovalStore) -> None:
    await store.create(request())
    assert await store.decide("a1", "granted", NOW + 60) == "expired"  # too late: refused
    assert await store.expire("a1")
    assert not await store.expire("a1")
    assert (await store.get("a1")) == request().with_status("expired")
    assert not await store.consume(request())


async def test_deny_and_unknown(store: ApprovalStore) -> None:
    await store.create(request())
    assert await store.decide("a1", "denied", NOW) == "denied"
    assert not await store.expire("a1")
    assert await store.decide("zz", "granted", NOW) is None


async def test_sqlite_is_shared_between_instances_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "approvals.sqlite3"
    one, two = SqliteApprovals(path), SqliteApprovals(path)
    await one.create(request())
    assert await two.decide("a1", "granted", NOW) == "granted"
    assert (await one.get("a1")) == request().with_status("granted")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    await one.close()
    await two.close()


def test_cli_options_reach_the_same_store_without_the_password() -> None:
    assert cli_options(StateOptions()) == ""
    assert cli_options(StateOptions(state_dir=Path("/x y"))) == "--state-dir '/x y'"
    shown = cli_options(StateOptions(spec="redis://u:pw@127.0.0.1:6379/0", prefix="p"))
    assert "pw" not in shown and shown.endswith("--state-prefix p")
