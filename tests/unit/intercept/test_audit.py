"""Audit log and `intercept status`: events written, never raw arguments, untrusted text made safe."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from intercept.audit import KEY_FILENAME, AuditLog
from intercept.cli import main
from intercept.status import clean, log_files, read_events, render, summarise
from intercept.util.fsutil import UnsafeFile


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_are_jsonl_with_instance_and_no_raw_arguments(tmp_path: Path) -> None:
    path = tmp_path / "events" / "audit.jsonl"
    log = AuditLog(path)
    log.startup("policy.yaml", "1 tools", "server-bin", "memory")
    log.tool_call("charge", "allow", "", "", {"api_key": "sk_live_SECRET", "amount": 5})
    log.tool_call("charge", "deny", "cap", "too much", {"amount": 5, "api_key": "sk_live_SECRET"})
    log.reload(False, "policy.yaml", "bad key")
    log.shutdown(0)
    log.close()
    text = path.read_text()
    assert "sk_live_SECRET" not in text and "amount" not in text
    records = events(path)
    assert [r["event"] for r in records] == ["startup", "tool_call", "tool_call", "reload", "shutdown"]
    assert len({r["instance"] for r in records}) == 1
    call, deny = records[1], records[2]
    assert (deny["tool"], deny["decision"], deny["rule"], deny["reason"]) == (
        "charge",
        "deny",
        "cap",
        "too much",
    )
    assert call["args_hmac"] == deny["args_hmac"]  # key order does not matter
    assert stat.S_IMODE((path.parent / KEY_FILENAME).stat().st_mode) == 0o600
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_argument_hash_is_keyed_per_log_directory(tmp_path: Path) -> None:
    one, two = AuditLog(tmp_path / "a" / "x.jsonl"), AuditLog(tmp_path / "b" / "x.jsonl")
    again = AuditLog(tmp_path / "a" / "y.jsonl")
    args = {"pin": "1234"}
    assert one.argument_hash(args) != two.argument_hash(args)
    assert one.argument_hash(args) == again.argument_hash(args)


def test_status_summarises_calls_denials_and_instances(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    first, second = AuditLog(path, "inst-one"), AuditLog(path, "inst-two")
    first.startup("p.yaml", "", "srv", "memory")
    second.startup("p.yaml", "", "srv", "sqlite")
    first.tool_call("a", "allow", "", "", {})
    first.tool_call("b", "deny", "hide", "tool is hidden by policy", {})
    second.tool_call("c", "deny", "hide", "tool is hidden by policy", {})
    second.tool_call("d", "deny", "limit", "rate limit", {})
    first.shutdown(3)
    with path.open("a") as handle:
        handle.write("not json\n[1]\n")
    report = summarise(read_events(log_files(tmp_path)), recent=3)
    assert report.denials_by_rule == {"hide": 2, "limit": 1}
    assert [e["tool"] for e in report.recent] == ["b", "c", "d"]
    assert set(report.instances) == {"inst-one", "inst-two"}
    assert report.instances["inst-one"].exit_status == 3 and report.instances["inst-two"].calls == 2
    assert report.skipped_lines == 2
    text = render(report)
    assert "Denials by rule (3)" in text and "exited 3" in text and "2 unreadable lines skipped" in text


def test_status_escapes_terminal_control_sequences_from_untrusted_names(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    AuditLog(path, "i").tool_call("evil\x1b[2J\x07name", "deny", "r\nule", "x", {})
    text = render(summarise(read_events([path])))
    assert "\x1b" not in text and "\x07" not in text and "evil\\x1b[2J\\x07name" in text
    assert clean("a" * 500).endswith("...") and len(clean("a" * 500)) == 80


def test_status_command(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    AuditLog(path, "cli").tool_call("tool_x", "deny", "hide", "hidden", {})
    result = CliRunner().invoke(main, ["status", "--audit-log", str(path)])
    assert result.exit_code == 0 and "tool_x" in result.output and "cli" in result.output
    missing = CliRunner().invoke(main, ["status", "--audit-log", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no audit log" in missing.output


async def test_inside_an_event_loop_events_are_written_after_the_current_callback(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    log.tool_call("t", "allow", "", "", {})
    log.tool_call("u", "deny", "r", "x", {})
    assert path.read_text() == ""  # still on the call's path: nothing written yet
    await asyncio.sleep(0)
    assert [e["tool"] for e in events(path)] == ["t", "u"]
    log.shutdown(0)
    log.close()  # close flushes what is queued
    assert events(path)[-1]["event"] == "shutdown"


def test_timestamps_are_utc_iso_to_the_millisecond(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for at in (0.0, 1_700_000_000.9995, 1_764_115_200.25, 4_102_444_799.999):
        expected = dt.datetime.fromtimestamp(at, dt.UTC)
        stamp = log._stamp(at)
        parsed = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
        assert stamp.endswith("Z") and len(stamp) == 24
        assert abs((parsed - expected).total_seconds()) < 0.001
    log.close()


def test_records_stay_ascii_and_untrusted_text_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    name = "ré\u202egnp\x1b[31m\U0001f600"
    log.tool_call(name, "deny", "cap", "line\nbreak", {"x": 1})
    log.close()
    raw = path.read_bytes()
    assert raw.isascii() and raw.count(b"\n") == 1
    assert events(path)[0]["tool"] == name and events(path)[0]["reason"] == "line\nbreak"


def test_argument_hash_ignores_key_order_and_accepts_lone_surrogates(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    assert log.argument_hash({"a": 1, "b": [1, "é"]}) == log.argument_hash({"b": [1, "é"], "a": 1})
    assert log.argument_hash({"a": 1}) != log.argument_hash({"a": 2})
    assert len(log.argument_hash({"s": "\ud800"})) == 32
    log.close()


def test_a_daily_log_moves_to_the_next_days_file_at_midnight_utc(tmp_path: Path) -> None:
    midnight = dt.datetime(2026, 11, 27, tzinfo=dt.UTC).timestamp()
    now = [midnight - 0.5]
    log = AuditLog.daily(tmp_path, "inst", clock=lambda: now[0])
    log.startup("p.yaml", "1 tools", "srv", "memory")
    log.tool_call("before", "allow", "", "", {})
    now[0] = midnight + 0.25
    log.tool_call("after", "allow", "", "", {})
    log.flush()
    now[0] = midnight + 86_400 + 1
    log.shutdown(0)
    log.close()
    day1, day2, day3 = (tmp_path / f"events-2026-11-{d}.jsonl" for d in (26, 27, 28))
    assert [e["event"] for e in events(day1)] == ["startup", "tool_call"]
    assert [e.get("tool") for e in events(day2)] == ["after"]
    assert [e["event"] for e in events(day3)] == ["shutdown"]
    assert events(day2)[0]["ts"] == "2026-11-27T00:00:00.250Z"
    assert {e["instance"] for e in events(day1) + events(day2) + events(day3)} == {"inst"}


def test_new_audit_directories_are_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        AuditLog(tmp_path / "a" / "events" / "audit.jsonl").close()
    finally:
        os.umask(old)
    for directory in (tmp_path / "a", tmp_path / "a" / "events"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def _give_away(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(path, 65534, 65534)


@pytest.mark.parametrize("name", [KEY_FILENAME, "audit.jsonl"])
def test_a_key_or_log_planted_by_another_user_is_refused(tmp_path: Path, name: str) -> None:
    planted = tmp_path / name
    planted.write_text(secrets.token_hex(32))
    planted.chmod(0o600)
    _give_away(planted)
    with pytest.raises(UnsafeFile) as refused:
        AuditLog(tmp_path / "audit.jsonl")
    assert f"{planted} belongs to another user (uid 65534)" in str(refused.value)
    assert "remove it" in str(refused.value)


@pytest.mark.parametrize(("mode", "problem"), [(0o644, "readable"), (0o620, "writable"), (0o606, "writable")])
def test_a_key_others_can_read_or_write_is_refused(tmp_path: Path, mode: int, problem: str) -> None:
    key = tmp_path / KEY_FILENAME
    key.write_text(secrets.token_hex(32))
    key.chmod(mode)
    with pytest.raises(UnsafeFile, match=problem) as refused:
        AuditLog(tmp_path / "audit.jsonl")
    assert f"audit log key file {key}" in str(refused.value) and "chmod 600" in str(refused.value)
    assert not (tmp_path / "audit.jsonl").exists()


def test_an_audit_log_in_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeFile, match=r"audit log directory .* is writable by group or others"):
        AuditLog(shared / "audit.jsonl")
    assert list(shared.iterdir()) == []
