"""Shadow evaluation through a real `intercept run` in front of server-everything, driven by the MCP SDK.

`--shadow` forwards calls the policy would deny and records them as `would_deny`; a `mode: shadow`
rule inside an enforced policy does the same for itself while the other rules keep enforcing.
`intercept status` reads both back from the audit log.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.http_support import EVERYTHING as EVERYTHING_PACKAGE
from tests.e2e.http_support import npx, proxy
from tests.e2e.proxy_helpers import DENIED, EVERYTHING, INTERCEPT, proxied, session, text_of

pytestmark = pytest.mark.e2e

POLICY = """
hide: [get-env]
tools:
  echo:
    rules:
      - name: no drop
        action: deny
        conditions:
          - {path: args.message, op: contains, value: DROP}
        reason: destructive SQL is not allowed
  get-sum:
    rules:
      - name: one sum a minute
        rate_limit: {max: 1, window: 60}
"""

TRIAL = """
tools:
  echo:
    rules:
      - name: no drop, on trial
        mode: shadow
        action: deny
        conditions:
          - {path: args.message, op: contains, value: DROP}
        reason: destructive SQL would not be allowed
      - name: no rm
        action: deny
        conditions:
          - {path: args.message, op: contains, value: rm -rf}
        reason: no shell commands
"""


def tool_calls(home: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in (home / "audit.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "tool_call"]


def status(home: Path) -> str:
    done = subprocess.run(
        [INTERCEPT, "status", "--audit-log", str(home / "audit.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_shadow_mode_forwards_what_the_policy_would_deny_and_records_it(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    stderr = tmp_path / "stderr.txt"
    async with session(proxied(policy, EVERYTHING, tmp_path, "--shadow"), stderr=stderr) as client:
        assert "get-env" in [t.name for t in (await client.list_tools()).tools]
        dropped = await client.call_tool("echo", {"message": "x; DROP TABLE users"})
        assert not dropped.is_error and text_of(dropped) == "Echo: x; DROP TABLE users"
        hidden = await client.call_tool("get-env", {})
        assert not hidden.is_error and DENIED not in text_of(hidden)
        for _ in range(3):  # nothing is counted, so the limit of one is never reached
            assert text_of(await client.call_tool("get-sum", {"a": 1, "b": 2})) == "The sum of 1 and 2 is 3."
    assert "shadow mode" in stderr.read_text()

    calls = tool_calls(tmp_path)
    assert [(c["tool"], c["decision"], c.get("would_deny")) for c in calls] == [
        ("echo", "allow", [{"rule": "no drop", "reason": "destructive SQL is not allowed"}]),
        ("get-env", "allow", [{"rule": "hide", "reason": "tool is hidden by policy"}]),
        ("get-sum", "allow", None),
        ("get-sum", "allow", None),
        ("get-sum", "allow", None),
    ]
    assert "DROP" not in (tmp_path / "audit.jsonl").read_text()

    report = status(tmp_path)
    assert "Denials by rule (0):" in report and "shadow (denies nothing)" in report
    would = report.split("Would-deny by rule (2):\n", 1)[1]
    assert "      1  no drop\n" in would and "      1  hide\n" in would
    assert "would deny, rule no drop: destructive SQL is not allowed" in report


async def test_a_shadow_rule_records_while_the_rest_of_the_policy_enforces(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(TRIAL)
    async with session(proxied(policy, EVERYTHING, tmp_path)) as client:
        tried = await client.call_tool("echo", {"message": "x; DROP TABLE users"})
        assert not tried.is_error and text_of(tried) == "Echo: x; DROP TABLE users"
        denied = await client.call_tool("echo", {"message": "rm -rf / # DROP"})
        assert denied.is_error and text_of(denied) == f"{DENIED} no shell commands (rule: no rm)"
        assert text_of(await client.call_tool("echo", {"message": "fine"})) == "Echo: fine"

    calls = tool_calls(tmp_path)
    assert [(c["decision"], c["rule"], c.get("would_deny")) for c in calls] == [
        ("allow", "", [{"rule": "no drop, on trial", "reason": "destructive SQL would not be allowed"}]),
        ("deny", "no rm", None),  # denied anyway: the shadow rule is not asked
        ("allow", "", None),
    ]
    report = status(tmp_path)
    assert "Denials by rule (1):\n       1  no rm\n" in report
    assert "Would-deny by rule (1):\n       1  no drop, on trial\n" in report
    assert "shadow (denies nothing)" not in report


async def test_shadow_mode_over_the_http_listener(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    audit = ["--state", "memory", "--audit-log", str(tmp_path / "audit.jsonl")]
    service = proxy(policy, "--shadow", *audit, "--", npx(), "-y", EVERYTHING_PACKAGE, "stdio")
    try:
        async with (
            streamable_http_client(service.url) as (read, write),
            ClientSession(read, write) as client,
        ):
            await client.initialize()
            assert "get-env" in [t.name for t in (await client.list_tools()).tools]
            dropped = await client.call_tool("echo", {"message": "DROP"})
            assert not dropped.is_error and text_of(dropped) == "Echo: DROP"
    finally:
        service.stop()
    [call] = tool_calls(tmp_path)
    assert call["decision"] == "allow" and call["would_deny"] == [
        {"rule": "no drop", "reason": "destructive SQL is not allowed"}
    ]
