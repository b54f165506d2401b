"""`intercept status`: read audit logs and summarise recent calls, denials and would-be denials by rule,
and instances.

Every string in the log came from a client or a server (tool names, reasons naming
arguments), so it is untrusted: `clean` strips control characters and bounds its length
before anything reaches a terminal.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_FIELD_CHARS = 80


def clean(value: Any, limit: int = MAX_FIELD_CHARS) -> str:
    """A terminal-safe rendering of an untrusted value: no control characters, bounded length."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=True)
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Instance:
    instance: str
    pid: Any = None
    started: str = ""
    policy: str = ""
    upstream: str = ""
    last_seen: str = ""
    calls: int = 0
    denials: int = 0
    would_deny: int = 0
    shadow: bool = False
    exit_status: Any = None


@dataclass
class StatusReport:
    recent: list[dict[str, Any]] = field(default_factory=list)
    denials_by_rule: Counter[str] = field(default_factory=Counter)
    would_deny_by_rule: Counter[str] = field(default_factory=Counter)
    """Rules that would have denied calls that went through (`mode: shadow`, `intercept run --shadow`)."""
    instances: dict[str, Instance] = field(default_factory=dict)
    skipped_lines: int = 0


def log_files(path: Path) -> list[Path]:
    """The audit files under a directory (oldest first by name), or the file itself."""
    if path.is_dir():
        return sorted(p for p in path.glob("*.jsonl") if p.is_file())
    return [path] if path.is_file() else []


def read_events(files: Iterable[Path]) -> Iterator[dict[str, Any] | None]:
    """Each event as a dict; None for a line that is not a JSON object (counted, not shown)."""
    for file in files:
        with file.open("rb") as handle:
            for raw in handle:
                try:
                    event = json.loads(raw)
                except ValueError:
                    yield None
                    continue
                yield event if isinstance(event, dict) else None


def summarise(events: Iterable[dict[str, Any] | None], recent: int = 20) -> StatusReport:
    report = StatusReport()
    for event in events:
        if event is None:
            report.skipped_lines += 1
            continue
        key = str(event.get("instance", "?"))
        inst = report.instances.setdefault(key, Instance(key))
        inst.last_seen = str(event.get("ts", inst.last_seen))
        kind = event.get("event")
        if kind == "startup":
            inst.pid = event.get("pid")
            inst.started = str(event.get("ts", ""))
            inst.policy = str(event.get("policy", ""))
            inst.upstream = str(event.get("upstream", ""))
            inst.shadow = event.get("shadow") is True
        elif kind == "tool_call":
            inst.calls += 1
            report.recent.append(event)
            if event.get("decision") == "deny":
                inst.denials += 1
                report.denials_by_rule[str(event.get("rule", "?"))] += 1
            verdicts = would_deny(event)
            if verdicts:
                inst.would_deny += 1
                report.would_deny_by_rule.update(rule for rule, _ in verdicts)
        elif kind == "shutdown":
            inst.exit_status = event.get("exit_status")
    report.recent = report.recent[-recent:]
    return report


def would_deny(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(rule, reason) of each well-formed entry of an event's `would_deny` list."""
    entries = event.get("would_deny")
    if not isinstance(entries, list):
        return []
    return [
        (str(entry.get("rule", "?")), str(entry.get("reason", "")))
        for entry in entries
        if isinstance(entry, dict)
    ]


def render(report: StatusReport) -> str:
    lines = [f"Instances seen ({len(report.instances)}):"]
    for inst in report.instances.values():
        state = "running or crashed" if inst.exit_status is None else f"exited {clean(inst.exit_status)}"
        would = f", {inst.would_deny} would-deny" if inst.would_deny else ""
        shadow = "  shadow (denies nothing)" if inst.shadow else ""
        lines.append(
            f"  {clean(inst.instance)}  pid {clean(inst.pid)}  started {clean(inst.started)}  "
            f"last {clean(inst.last_seen)}  {inst.calls} calls, {inst.denials} denied{would}  {state}{shadow}"
        )
        if inst.policy or inst.upstream:
            lines.append(f"      policy {clean(inst.policy, 200)}  server {clean(inst.upstream)}")
    lines.append("")
    lines.append(f"Denials by rule ({sum(report.denials_by_rule.values())}):")
    for rule, count in report.denials_by_rule.most_common():
        lines.append(f"  {count:6d}  {clean(rule)}")
    lines.append("")
    lines.append(f"Would-deny by rule ({sum(report.would_deny_by_rule.values())}):")
    for rule, count in report.would_deny_by_rule.most_common():
        lines.append(f"  {count:6d}  {clean(rule)}")
    lines.append("")
    lines.append(f"Recent calls ({len(report.recent)}):")
    for event in report.recent:
        decision = clean(event.get("decision", "?"))
        detail = (
            f"  rule {clean(event.get('rule', ''))}: {clean(event.get('reason', ''))}"
            if decision == "deny"
            else ""
        )
        for rule, reason in would_deny(event):
            detail += f"  would deny, rule {clean(rule)}: {clean(reason)}"
        lines.append(f"  {clean(event.get('ts', ''))}  {decision:5s}  {clean(event.get('tool', ''))}{detail}")
    if report.skipped_lines:
        lines.append("")
        lines.append(f"({report.skipped_lines} unreadable lines skipped)")
    return "\n".join(lines) + "\n"
