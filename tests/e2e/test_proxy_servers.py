"""`intercept run` in front of real servers from npm and PyPI, driven by the official MCP SDK client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.proxy_helpers import DENIED, INTERCEPT, comparable, direct, proxied, session, text_of

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
RECORDER = str(Path(__file__).with_name("stdin_recorder.py"))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def test_filesystem_server(tmp_path: Path) -> None:
    root = tmp_path / "files"
    root.mkdir()
    (root / "notes.txt").write_text("hello from the filesystem\n")
    (root / "secret.env").write_text("TOKEN=abc\n")
    server = ["npx", "-y", "@modelcontextprotocol/server-filesystem", str(root)]
    policy = write(
        tmp_path / "fs.yaml",
        """
hide: [write_file, edit_file, move_file]
tools:
  read_text_file:
    rules:
      - name: no env files
        action: deny
        conditions:
          - path: args.path
            op: regex
            value: '\\.env$'
        reason: env files hold credentials
      - validate: {required_args: true}
""",
    )
    read_notes = ("read_text_file", {"path": str(root / "notes.txt")})
    async with session(direct(server, tmp_path)) as client:
        expected = comparable(await client.call_tool(*read_notes))
        direct_names = [t.name for t in (await client.list_tools()).tools]
    async with session(proxied(policy, server, tmp_path)) as client:
        assert comparable(await client.call_tool(*read_notes)) == expected
        names = [t.name for t in (await client.list_tools()).tools]
        assert names == [n for n in direct_names if n not in {"write_file", "edit_file", "move_file"}]
        env = await client.call_tool("read_text_file", {"path": str(root / "secret.env")})
        assert env.is_error and text_of(env) == f"{DENIED} env files hold credentials (rule: no env files)"
        hidden = await client.call_tool("write_file", {"path": str(root / "x"), "content": "x"})
        assert hidden.is_error and "hidden by policy" in text_of(hidden)
        missing = await client.call_tool("read_text_file", {})
        assert missing.is_error and "missing required argument: path" in text_of(missing)
    assert not (root / "x").exists()


async def test_time_server(tmp_path: Path) -> None:
    server = [str(BIN / "mcp-server-time")]
    policy = write(
        tmp_path / "time.yaml",
        """
default: deny
tools:
  convert_time:
    rules:
      - rate_limit: {max: 2, window: 60}
      - validate: {required_args: true, schema: true}
""",
    )
    args = {"source_timezone": "Europe/Paris", "time": "14:30", "target_timezone": "Asia/Tokyo"}
    async with session(direct(server, tmp_path)) as client:
        expected = comparable(await client.call_tool("convert_time", args))
    async with session(proxied(policy, server, tmp_path)) as client:
        assert comparable(await client.call_tool("convert_time", args)) == expected
        wrong_type = await client.call_tool("convert_time", {**args, "time": 1430})
        assert wrong_type.is_error and "do not match the input schema: at time" in text_of(wrong_type)
        assert not (await client.call_tool("convert_time", args)).is_error
        third = await client.call_tool("convert_time", args)
        assert third.is_error and "rate limit of 2 calls per 60 s reached" in text_of(third)
        unlisted = await client.call_tool("get_current_time", {"timezone": "UTC"})
        assert text_of(unlisted) == f"{DENIED} tool is not allowed by policy (default: deny) (rule: default)"


async def test_git_server(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for cmd in (["init", "-q"], ["config", "user.email", "t@example.com"], ["config", "user.name", "T"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    (repo / "a.txt").write_text("a\n")
    subprocess.run(["git", "add", "a.txt"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "first"], cwd=repo, check=True)
    server = [str(BIN / "mcp-server-git"), "--repository", str(repo)]
    policy = write(
        tmp_path / "git.yaml",
        """
hide: [git_reset]
tools:
  git_commit:
    rules:
      - action: deny
        reason: commits need a human
  git_checkout:
    rules:
      - conditions:
          - path: args.branch_name
            op: regex
            value: '^feature/'
        reason: only feature branches
""",
    )
    status_args = {"repo_path": str(repo)}
    async with session(direct(server, tmp_path)) as client:
        expected = [comparable(await client.call_tool(n, status_args)) for n in ("git_status", "git_log")]
    async with session(proxied(policy, server, tmp_path)) as client:
        assert [
            comparable(await client.call_tool(n, status_args)) for n in ("git_status", "git_log")
        ] == expected
        commit = await client.call_tool("git_commit", {"repo_path": str(repo), "message": "sneaky"})
        assert (
            commit.is_error
            and text_of(commit) == f"{DENIED} commits need a human (rule: tools.git_commit.rules[0])"
        )
        checkout = await client.call_tool("git_checkout", {"repo_path": str(repo), "branch_name": "main"})
        assert checkout.is_error and "only feature branches" in text_of(checkout)
        assert "git_reset" not in [t.name for t in (await client.list_tools()).tools]
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo, capture_output=True, text=True, check=True)
    assert log.stdout.count("\n") == 1


async def test_scaffolded_trigger_dev_policy_loads_and_enforces(tmp_path: Path) -> None:
    policy = tmp_path / "trigger-dev.yaml"
    scaffold = subprocess.run([INTERCEPT, "scaffold", "trigger-dev", "-o", str(policy)], capture_output=True)
    assert scaffold.returncode == 0, scaffold.stderr
    validated = subprocess.run([INTERCEPT, "validate", "-c", str(policy)], capture_output=True, text=True)
    assert validated.returncode == 0 and "policy is valid" in validated.stdout
    received = tmp_path / "received.jsonl"
    server = [sys.executable, RECORDER, str(received), "--", "npx", "-y", "trigger.dev@4.8.3", "mcp"]
    async with session(proxied(policy, server, tmp_path)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"set_webhook_secret", "cancel_run", "trigger_task"} <= names
        secret = await client.call_tool("set_webhook_secret", {"endpointId": "ep_1", "secret": "whsec_x"})
        assert (
            secret.is_error
            and text_of(secret).startswith(DENIED)
            and "set_webhook_secret can destroy" in text_of(secret)
        )
        cancel = await client.call_tool("cancel_run", {})
        assert cancel.is_error and "missing required argument: runId" in text_of(cancel)
    reached = received.read_text()
    assert '"tools/list"' in reached
    assert "set_webhook_secret" not in reached and "whsec_x" not in reached and "cancel_run" not in reached
