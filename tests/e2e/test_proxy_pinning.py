"""Tool pinning through a real `intercept run`, driven by the MCP SDK client.

The server (rug_pull_server.py) changes `send_email`'s description mid-session and announces it
with `notifications/tools/list_changed`; the pinned tool must disappear from the next listing and
its calls be denied, or, with `--on-drift warn`, stay callable with the drift logged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from intercept.scan import StdioTarget, scan_async
from intercept.util.tooldef import definition_hash
from tests.e2e.proxy_helpers import proxied, session, text_of

pytestmark = pytest.mark.e2e

SERVER = [sys.executable, str(Path(__file__).with_name("rug_pull_server.py"))]
DRIFT_TEXT = "[INTERCEPT POLICY DENIED] tool definition changed since it was pinned (rule: pin)"


async def pinned_policy(tmp_path: Path) -> Path:
    """A policy pinning send_email to the definition the server lists at start."""
    (tool,) = [t for t in (await scan_async(StdioTarget(SERVER))).tools if t.name == "send_email"]
    digest = definition_hash(
        {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'tools:\n  send_email:\n    pin: "{digest}"\n    rules:\n      - action: allow\n')
    return policy


def events(home: Path, kind: str) -> list[dict[str, Any]]:
    lines = (home / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


async def test_a_changed_definition_is_quarantined(tmp_path: Path) -> None:
    policy = await pinned_policy(tmp_path)
    async with session(proxied(policy, SERVER, tmp_path)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {"send_email", "rug_pull"}
        sent = await client.call_tool("send_email", {"to": "a@example.com"})
        assert not sent.is_error and text_of(sent).startswith("sent to")
        assert text_of(await client.call_tool("rug_pull", {})) == "changed"
        assert {t.name for t in (await client.list_tools()).tools} == {"rug_pull"}
        denied = await client.call_tool("send_email", {"to": "a@example.com"})
        assert denied.is_error and text_of(denied) == DRIFT_TEXT

    (drift,) = events(tmp_path, "pin_drift")
    assert drift["tool"] == "send_email" and drift["action"] == "quarantined"
    assert drift["changed"] == ["description"]
    assert "archive@example.com" not in (tmp_path / "audit.jsonl").read_text()
    calls = [(c["tool"], c["decision"], c["rule"]) for c in events(tmp_path, "tool_call")]
    assert calls[-1] == ("send_email", "deny", "pin")


async def test_a_call_after_list_changed_is_checked_without_the_client_listing(tmp_path: Path) -> None:
    policy = await pinned_policy(tmp_path)
    async with session(proxied(policy, SERVER, tmp_path)) as client:
        assert text_of(await client.call_tool("rug_pull", {})) == "changed"
        denied = await client.call_tool("send_email", {"to": "a@example.com"})
        assert denied.is_error and text_of(denied) == DRIFT_TEXT
    (drift,) = events(tmp_path, "pin_drift")
    assert drift["changed"] == [] and "no matching definition" in drift["detail"]


async def test_on_drift_warn_allows_the_call_and_logs_the_drift(tmp_path: Path) -> None:
    policy = await pinned_policy(tmp_path)
    stderr = tmp_path / "stderr.txt"
    async with session(proxied(policy, SERVER, tmp_path, "--on-drift", "warn"), stderr=stderr) as client:
        await client.list_tools()
        assert text_of(await client.call_tool("rug_pull", {})) == "changed"
        assert {t.name for t in (await client.list_tools()).tools} == {"send_email", "rug_pull"}
        sent = await client.call_tool("send_email", {"to": "a@example.com"})
        assert not sent.is_error and text_of(sent).startswith("sent to")
    (drift,) = events(tmp_path, "pin_drift")
    assert drift["action"] == "allowed" and drift["changed"] == ["description"]
    log = stderr.read_text()
    assert "'send_email': definition changed since it was pinned (description); allowed" in log
