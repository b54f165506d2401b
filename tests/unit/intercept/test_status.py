"""`intercept status` reports would-be denials (shadow rules, `intercept run --shadow`) by rule."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from intercept.audit import AuditLog
from intercept.cli import main
from intercept.engine import Denial
from intercept.status import log_files, read_events, render, summarise


def test_would_deny_is_counted_per_rule_beside_denials(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    enforcing, shadow = AuditLog(path, "enforcing"), AuditLog(path, "shadowing")
    enforcing.startup("p.yaml", "", "srv", "memory")
    shadow.startup("p.yaml", "", "srv", "memory", shadow=True)
    enforcing.tool_call("a", "allow", "", "", {}, [Denial("trial", "would be too many")])
    enforcing.tool_call("b", "deny", "hide", "tool is hidden by policy", {})
    shadow.tool_call("b", "allow", "", "", {}, [Denial("hide", "tool is hidden by policy")])
    shadow.tool_call("c", "allow", "", "", {}, [Denial("trial", "x"), Denial("other", "y")])
    shadow.tool_call("d", "allow", "", "", {})
    enforcing.close()
    shadow.close()
    report = summarise(read_events(log_files(path)))
    assert report.denials_by_rule == {"hide": 1}
    assert report.would_deny_by_rule == {"trial": 2, "hide": 1, "other": 1}
    assert report.instances["shadowing"].shadow and not report.instances["enforcing"].shadow
    assert report.instances["shadowing"].would_deny == 2 and report.instances["enforcing"].would_deny == 1
    text = render(report)
    assert "Denials by rule (1):" in text and "Would-deny by rule (4):" in text
    assert "      2  trial" in text.split("Would-deny by rule")[1]
    assert "3 calls, 0 denied, 2 would-deny" in text and "shadow (denies nothing)" in text
    assert "allow  a  would deny, rule trial: would be too many" in text


def test_malformed_would_deny_entries_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"event": "tool_call", "tool": "t", "decision": "allow", "would_deny": "x"}\n'
        '{"event": "tool_call", "tool": "t", "decision": "allow", "would_deny": [1, {"rule": "r\\u001b"}]}\n'
    )
    report = summarise(read_events([path]))
    assert report.would_deny_by_rule == {"r\x1b": 1}
    assert "\x1b" not in render(report)


def test_status_command_shows_would_deny(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    AuditLog(path, "cli").tool_call("tool_x", "allow", "", "", {}, [Denial("trial rule", "would deny")])
    result = CliRunner().invoke(main, ["status", "--audit-log", str(path)])
    assert (
        result.exit_code == 0 and "Would-deny by rule (1):" in result.output and "trial rule" in result.output
    )
