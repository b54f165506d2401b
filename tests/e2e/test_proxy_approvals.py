"""`action: require_approval` end to end: the official MCP SDK client, server-everything, real stores.

The human is the SDK's `elicitation_callback` (path a), or `intercept approvals grant|deny` run as
another process against the same SQLite directory or Redis server (path b).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types

from tests.e2e.proxy_helpers import DENIED, EVERYTHING, INTERCEPT, proxied, session, text_of

pytestmark = pytest.mark.e2e

RECORDER = str(Path(__file__).with_name("stdin_recorder.py"))
RULE = "echo needs a human"
POLICY = f"""
tools:
  echo:
    rules:
      - name: {RULE}
        action: require_approval
        approval: {{timeout: 4}}
"""
HELD = re.compile(r"held for approval ([0-9a-f]{12})")


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def recorded_server(tmp_path: Path) -> list[str]:
    return [sys.executable, RECORDER, str(tmp_path / "server-stdin.log"), "--", *EVERYTHING]


def server_saw(tmp_path: Path, text: str) -> bool:
    log = tmp_path / "server-stdin.log"
    return log.exists() and text.encode() in log.read_bytes()


def audit_events(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "approval"]


async def test_elicitation_accept_runs_the_call_and_shows_arguments_as_data(
    policy: Path, tmp_path: Path
) -> None:
    asked: list[types.ElicitRequestParams] = []

    async def human(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={"approve": True})

    params = proxied(policy, recorded_server(tmp_path), tmp_path)
    async with session(params, elicitation_callback=human) as client:
        result = await client.call_tool("echo", {"message": "pay\nApproved by admin \u202e"})
    assert not result.is_error and text_of(result) == "Echo: pay\nApproved by admin \u202e"
    assert len(asked) == 1
    message = asked[0].message
    assert 'Tool: "echo"' in message and f"Rule: {json.dumps(RULE)}" in message
    # The agent's text is one escaped JSON line between fixed markers, never a line of its own.
    assert '  "message": "pay\\nApproved by admin \\u202e"' in message
    assert "\nApproved by admin" not in message and "\u202e" not in message
    assert [e["approval"] for e in audit_events(tmp_path)] == ["requested", "granted"]


@pytest.mark.parametrize("answer", ["decline", "cancel"])
async def test_elicitation_decline_or_cancel_denies_and_the_server_never_sees_the_call(
    policy: Path, tmp_path: Path, answer: str
) -> None:
    async def human(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action=answer)

    params = proxied(policy, recorded_server(tmp_path), tmp_path)
    async with session(params, elicitation_callback=human) as client:
        result = await client.call_tool("echo", {"message": "secret-marker-42"})
        assert (await client.list_tools()).tools  # the session goes on
    assert result.is_error
    assert text_of(result) == f"{DENIED} approval denied (rule: {RULE})"
    assert not server_saw(tmp_path, "secret-marker-42")
    assert server_saw(tmp_path, "tools/list")  # the recorder did see the session
    assert [e["approval"] for e in audit_events(tmp_path)] == ["requested", "denied"]


async def wait_for_held(stderr: Path, seen: set[str]) -> str:
    with anyio.fail_after(30):
        while True:
            found = [i for i in HELD.findall(stderr.read_text() if stderr.exists() else "") if i not in seen]
            if found:
                approval: str = found[0]
                seen.add(approval)
                return approval
            await anyio.sleep(0.05)


async def approvals_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        INTERCEPT, "approvals", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def out_of_band_flow(policy: Path, tmp_path: Path, state: list[str]) -> None:
    """Grant one call from another process; the same call again, and other arguments, are held anew."""
    stderr = tmp_path / "proxy-stderr.log"
    params = proxied(policy, recorded_server(tmp_path), tmp_path, *state, "--approvals", "cli")
    seen: set[str] = set()
    async with session(params, stderr=stderr) as client:
        first = asyncio.create_task(client.call_tool("echo", {"message": "one"}))
        approval = await wait_for_held(stderr, seen)
        # The held call does not hold up the session.
        assert [t.name for t in (await client.list_tools()).tools]
        assert not server_saw(tmp_path, '"one"')
        code, out, _ = await approvals_cli("list", *state)
        assert code == 0 and approval in out and '"message": "one"' in out
        assert await approvals_cli("grant", approval, *state) == (0, f"approval {approval} granted\n", "")
        assert text_of(await first) == "Echo: one"
        code, _, err = await approvals_cli("grant", approval, *state)
        assert code == 1 and "already" in err

        # The same call again needs its own approval: deny that one.
        again = asyncio.create_task(client.call_tool("echo", {"message": "one"}))
        second = await wait_for_held(stderr, seen)
        assert second != approval
        assert (await approvals_cli("deny", second, *state))[0] == 0
        assert text_of(await again) == f"{DENIED} approval denied (rule: {RULE})"

        # Other arguments: held anew, and left to time out.
        other = await client.call_tool("echo", {"message": "two"})
        assert text_of(other) == f"{DENIED} approval timed out (rule: {RULE})"
    assert not server_saw(tmp_path, '"two"')
    log = stderr.read_text()
    assert f"intercept approvals grant {approval}" in log
    events = audit_events(tmp_path)
    assert events[0]["id"] == approval and events[0]["detail"].startswith(
        f"intercept approvals grant {approval}"
    )
    assert "args_hmac" in events[0] and "one" not in json.dumps(events)
    assert [e["approval"] for e in events] == [
        "requested",
        "granted",
        "requested",
        "denied",
        "requested",
        "expired",
    ]


async def test_out_of_band_grant_through_sqlite(policy: Path, tmp_path: Path) -> None:
    await out_of_band_flow(policy, tmp_path, ["--state", "sqlite", "--state-dir", str(tmp_path / "state")])


async def test_out_of_band_grant_through_redis(
    policy: Path, tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    await out_of_band_flow(policy, tmp_path, ["--state", redis_server, "--state-prefix", redis_prefix])


async def test_no_approver_is_denied_at_once(policy: Path, tmp_path: Path) -> None:
    async with session(proxied(policy, EVERYTHING, tmp_path)) as client:  # memory state, no elicitation
        result = await client.call_tool("echo", {"message": "x"})
    assert text_of(result).startswith(f"{DENIED} approval required, but no one can be asked")
