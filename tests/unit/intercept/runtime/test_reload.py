"""Hot reload: only a completed write reloads; a valid one swaps the engine, an invalid one is logged
and the old policy stays; symlink and ConfigMap swaps are followed."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from intercept.engine import Engine
from intercept.runtime import reload
from intercept.runtime.reload import (
    PolicyWatch,
    ReloadUnavailable,
    reload_policy,
    resolve_chain,
    watch_policy,
)
from intercept.util.errors import InputError
from tests.unit.intercept.runtime.reload_support import configmap

VALID = "hide: [a]\n"
EDITED = "hide: [b]\n"
INVALID = "hide: [a]\ntools:\n  t:\n    rules:\n      - rate_limt: 5/minute\n"
# A prefix of COMPLETE that stops just before `tools:` is a valid policy without its limits.
PREFIX = "hide: [c]\n"
COMPLETE = PREFIX + "tools:\n  t:\n    rules:\n      - rate_limit: 5/minute\n"
# Long enough that a reload of a pending write would have happened if a pause allowed one.
PAUSE = 4 * reload.SETTLE_SECONDS


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


def test_resolve_chain_names_every_link_and_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path.resolve()
    configmap(root, "v1", VALID)
    chain = resolve_chain(root / "policy.yaml")
    assert chain.leads_to_file
    assert chain.entries == ((root, "policy.yaml"), (root, "..data"), (root / "..v1", "policy.yaml"))
    monkeypatch.chdir(root / "..v1")
    assert resolve_chain(Path("../policy.yaml")) == chain
    (root / "..v1" / "policy.yaml").unlink()
    dangling = resolve_chain(root / "policy.yaml")
    assert not dangling.leads_to_file and dangling.entries[-1] == (root / "..v1", "policy.yaml")
    os.symlink("loop", root / "loop")
    assert not resolve_chain(root / "loop").leads_to_file


@dataclass
class Seen:
    applied: list[Engine] = field(default_factory=list)
    reports: list[tuple[bool, str]] = field(default_factory=list)

    async def reports_reach(self, count: int) -> None:
        for _ in range(200):
            if len(self.reports) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} reload reports, got {self.reports}")


@asynccontextmanager
async def watching(path: Path) -> AsyncIterator[Seen]:
    seen = Seen()
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch_policy(
            PolicyWatch.open(path), seen.applied.append, lambda ok, d: seen.reports.append((ok, d)), stop
        )
    )
    try:
        yield seen
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_valid_edits_apply_and_an_invalid_one_is_logged_and_keeps_the_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(VALID)
    caplog.set_level(logging.WARNING, "intercept.reload")
    async with watching(path) as seen:
        path.write_text(INVALID)
        await seen.reports_reach(1)
        assert seen.reports[0][0] is False and "rate_limt" in seen.reports[0][1] and seen.applied == []
        assert "policy reload rejected" in caplog.text and "rate_limt" in caplog.text
        tmp = tmp_path / "p.yaml.new"
        tmp.write_text(EDITED)
        tmp.replace(path)  # the way editors save
        await seen.reports_reach(2)
        assert seen.reports[1][0] is True
        assert seen.applied[-1].hides("b") and not seen.applied[-1].hides("a")
        assert f"policy reloaded from {path}" in caplog.text


async def test_a_symlink_swapped_by_rename_is_reloaded_and_its_new_target_watched(tmp_path: Path) -> None:
    (tmp_path / "v1.yaml").write_text(VALID)
    (tmp_path / "v2.yaml").write_text(EDITED)
    link = tmp_path / "policy.yaml"
    os.symlink("v1.yaml", link)
    async with watching(link) as seen:
        os.symlink("v2.yaml", tmp_path / "policy.yaml.tmp")  # what `ln -sfn v2.yaml policy.yaml` does
        os.replace(tmp_path / "policy.yaml.tmp", link)
        await seen.reports_reach(1)
        assert seen.reports[0][0] is True and seen.applied[-1].hides("b")
        (tmp_path / "v1.yaml").write_text("hide: [old]\n")  # no longer the policy
        await asyncio.sleep(PAUSE)
        assert len(seen.reports) == 1
        (tmp_path / "v2.yaml").write_text("hide: [new]\n")  # the policy now
        await seen.reports_reach(2)
        assert seen.applied[-1].hides("new")


async def test_a_configmap_data_swap_is_reloaded_and_followed(tmp_path: Path) -> None:
    root = tmp_path / "config"
    root.mkdir()
    configmap(root, "v1", VALID)
    async with watching(root / "policy.yaml") as seen:
        configmap(root, "v2", EDITED)
        await seen.reports_reach(1)
        assert seen.reports[0][0] is True and seen.applied[-1].hides("b")
        configmap(root, "v3", "hide: [third]\n")  # the watches moved on to ..v2, and now to ..v3
        await seen.reports_reach(2)
        assert seen.applied[-1].hides("third")
        configmap(root, "v4", INVALID)
        await seen.reports_reach(3)
        assert seen.reports[2][0] is False and len(seen.applied) == 2


async def test_a_pause_mid_write_never_applies_the_valid_prefix(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(VALID)
    async with watching(path) as seen:
        with path.open("w") as writer:  # `curl ... > p.yaml` on a slow link
            writer.write(PREFIX)
            writer.flush()
            await asyncio.sleep(PAUSE)
            assert reload_policy(path).__class__ is Engine  # the prefix alone is a valid policy...
            assert seen.reports == []  # ...and was not applied
            writer.write(COMPLETE[len(PREFIX) :])
        await seen.reports_reach(1)
        assert seen.reports == [(True, seen.reports[0][1])]
        assert seen.applied[0].policy.tools and seen.applied[0].hides("c")


async def test_a_write_starting_in_the_settle_time_puts_the_reload_off_until_it_completes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(VALID)
    async with watching(path) as seen:
        path.write_text(EDITED)  # complete, but rewritten at once, before the settle time is over
        with path.open("w") as writer:
            writer.write(PREFIX)
            writer.flush()
            await asyncio.sleep(PAUSE)
            assert seen.reports == []
            writer.write(COMPLETE[len(PREFIX) :])
        await seen.reports_reach(1)
        assert len(seen.applied) == 1 and seen.applied[0].policy.tools


def test_without_inotify_opening_fails_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exhausted() -> None:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(reload, "Inotify", exhausted)
    with pytest.raises(ReloadUnavailable, match="--no-watch") as caught:
        PolicyWatch.open(tmp_path / "p.yaml")
    assert "Too many open files" in str(caught.value)
