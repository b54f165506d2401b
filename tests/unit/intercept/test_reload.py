"""Hot reload: a valid edit swaps the engine, an invalid one is rejected and the old policy stays."""

from __future__ import annotations

import asyncio
from pathlib import Path

from intercept.engine import Engine
from intercept.reload import reload_policy, watch_policy
from intercept.util.errors import InputError

VALID = "hide: [a]\n"
EDITED = "hide: [b]\n"
INVALID = "hide: [a]\ntools:\n  t:\n    rules:\n      - rate_limt: 5/minute\n"


def test_reload_policy_returns_an_engine_or_the_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(VALID)
    assert isinstance(reload_policy(path), Engine)
    path.write_text(INVALID)
    outcome = reload_policy(path)
    assert isinstance(outcome, InputError) and "rate_limt" in outcome.render()
    path.write_text("")  # an editor that truncates before writing: never an allow-all policy
    outcome = reload_policy(path)
    assert isinstance(outcome, InputError) and "the policy is empty" in outcome.render()


async def test_watcher_applies_valid_edits_and_rejects_invalid_ones(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(VALID)
    applied: list[Engine] = []
    reports: list[tuple[bool, str]] = []
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch_policy(path, applied.append, lambda ok, d: reports.append((ok, d)), stop)
    )
    await asyncio.sleep(0.3)  # let the watcher start

    async def wait_for_reports(count: int) -> None:
        for _ in range(200):
            if len(reports) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} reload reports, got {reports}")

    path.write_text(INVALID)
    await wait_for_reports(1)
    assert reports[0][0] is False and "rate_limt" in reports[0][1] and applied == []
    tmp = tmp_path / "p.yaml.new"
    tmp.write_text(EDITED)
    tmp.replace(path)  # the way editors save
    await wait_for_reports(2)
    assert reports[1][0] is True
    assert applied[-1].hides("b") and not applied[-1].hides("a")
    stop.set()
    await asyncio.wait_for(task, 5)
