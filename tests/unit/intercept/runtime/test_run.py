"""The composition root called directly, without click: what stops `intercept run` from starting."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from intercept.runtime import reload
from intercept.runtime.options import RunOptions
from intercept.runtime.run import run_proxy
from intercept.state import StateOptions

POLICY = "tools:\n  echo:\n    rules:\n      - action: allow\n"


def test_a_policy_that_cannot_be_watched_exits_1_naming_no_watch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def exhausted() -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(reload, "Inotify", exhausted)
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    options = RunOptions(config=policy, command=[sys.executable, "-c", "raise SystemExit(0)"])
    assert run_proxy(options) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cannot watch the policy for hot reload" in captured.err and "--no-watch" in captured.err


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("invalid-policy", 1, "policy is invalid (1 errors)"),
        ("unknown-store", 2, "unknown --state 'nosuch'"),
        ("unopenable-audit-log", 1, "cannot open audit log"),
        ("unstartable-server", 127, "cannot start MCP server"),
    ],
)
def test_what_prevents_a_start_has_its_exit_status_and_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, status: int, message: str
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("tools: {echo: {rules: [{bogus: 1}]}}\n" if case == "invalid-policy" else POLICY)
    (tmp_path / "a-file").write_text("")
    options = RunOptions(
        config=policy,
        command=[str(tmp_path / "no-such-server") if case == "unstartable-server" else sys.executable],
        state=StateOptions("nosuch" if case == "unknown-store" else "memory"),
        audit_log=tmp_path / ("a-file/events.jsonl" if case == "unopenable-audit-log" else "a.jsonl"),
        watch=False,
    )
    assert run_proxy(options) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("intercept run: ") and message in captured.err
