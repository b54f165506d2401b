"""Batch runs: every item once, results handed back on the calling thread, resumable from a state file."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from rich.console import Console

from generator.catalog.batch import StateFile, run_batch

QUIET = Console(file=io.StringIO())


def test_every_item_runs_once_and_on_done_runs_on_the_calling_thread(tmp_path: Path) -> None:
    caller = threading.get_ident()
    seen: list[tuple[str, int, bool]] = []
    batch = run_batch(
        ["a", "bb", "ccc"],
        lambda s: s,
        len,
        jobs=2,
        state=StateFile(tmp_path / "state.json"),
        label="t",
        on_done=lambda item, n: seen.append((item, n, threading.get_ident() == caller)),
        console=QUIET,
    )
    assert sorted(seen) == [("a", 1, True), ("bb", 2, True), ("ccc", 3, True)]
    assert not batch.interrupted and batch.skipped == []
    assert not (tmp_path / "state.json").exists()  # finished: the next run starts afresh


def test_a_run_resumes_after_what_the_state_file_says_is_done(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = StateFile(path)
    state.mark("a")
    assert StateFile(path).done == {"a"}
    ran: list[str] = []
    batch = run_batch(
        ["a", "b"],
        lambda s: s,
        lambda s: ran.append(s),
        jobs=1,
        state=StateFile(path),
        label="t",
        console=QUIET,
    )
    assert ran == ["b"] and batch.skipped == ["a"]


def test_an_interrupt_stops_the_batch_and_keeps_what_finished(tmp_path: Path) -> None:
    path = tmp_path / "state.json"

    def job(item: str) -> str:
        return item

    def on_done(item: str, _: str) -> None:
        if item == "b":
            raise KeyboardInterrupt

    batch = run_batch(
        ["a", "b", "c"],
        lambda s: s,
        job,
        jobs=1,
        state=StateFile(path),
        label="t",
        on_done=on_done,
        console=QUIET,
    )
    assert batch.interrupted
    assert StateFile(path).done == {"a"}  # b was not recorded: its result was not written
