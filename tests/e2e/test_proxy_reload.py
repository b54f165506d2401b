"""Policy hot reload in a running `intercept run` in front of server-everything, driven by the MCP SDK:
link swaps (a ConfigMap's `..data`, `ln -sfn`) take effect, an invalid one is logged and changes
nothing, and a write that pauses mid-file never gets its valid prefix applied."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession

from intercept.runtime.reload import SETTLE_SECONDS
from tests.e2e.proxy_helpers import DENIED, EVERYTHING, proxied, session, text_of
from tests.unit.intercept.runtime.reload_support import configmap, ln_sfn

pytestmark = pytest.mark.e2e

ALLOW_ECHO = "hide: [get-env]\n"
INVALID = "hide: [get-env]\ntools:\n  echo:\n    rules:\n      - rate_limt: 5/minute\n"


def deny_echo(reason: str) -> str:
    rule = f"      - name: {reason}\n        action: deny\n        reason: {reason}\n"
    return f"{ALLOW_ECHO}tools:\n  echo:\n    rules:\n{rule}"


async def echo(client: ClientSession) -> str:
    return text_of(await client.call_tool("echo", {"message": "hi"}))


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(300):
        if await check():
            return
        await anyio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def reloads(home: Path) -> list[dict[str, Any]]:
    lines = (home / "audit.jsonl").read_text().splitlines()
    return [event for event in map(json.loads, lines) if event["event"] == "reload"]


@pytest.mark.parametrize("deploy", [configmap, ln_sfn], ids=["configmap", "ln-sfn"])
async def test_a_swapped_link_is_reloaded_and_a_bad_swap_is_logged_and_changes_nothing(
    deploy: Callable[[Path, str, str], Path], tmp_path: Path
) -> None:
    root = tmp_path / "config"
    root.mkdir()
    policy = deploy(root, "v1", ALLOW_ECHO)
    stderr = tmp_path / "stderr.log"
    async with session(proxied(policy, EVERYTHING, tmp_path), stderr=stderr) as client:
        assert DENIED not in await echo(client)
        deploy(root, "v2", deny_echo("swapped in"))

        async def denied() -> bool:
            return "swapped in" in await echo(client)

        await until(denied, "the swapped-in policy applies")
        deploy(root, "v3", INVALID)

        async def rejected() -> bool:
            return len(reloads(tmp_path)) == 2

        await until(rejected, "the invalid swap is reported")
        assert "swapped in" in await echo(client)  # the last valid policy stays in force
    first, second = reloads(tmp_path)
    assert first["ok"] is True and second["ok"] is False and "rate_limt" in second["detail"]
    log = stderr.read_text()
    assert f"policy reloaded from {policy}" in log
    assert "policy reload rejected" in log and "rate_limt" in log


async def test_a_pause_mid_write_never_applies_the_valid_prefix(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(deny_echo("old policy"))
    complete = deny_echo("new policy")
    prefix = complete[: complete.index("tools:")]  # valid, and it allows echo
    async with session(proxied(policy, EVERYTHING, tmp_path)) as client:
        assert "old policy" in await echo(client)
        with policy.open("w") as writer:  # `curl ... > policy.yaml` on a slow link
            writer.write(prefix)
            writer.flush()
            for _ in range(5):
                await anyio.sleep(SETTLE_SECONDS)
                assert "old policy" in await echo(client)
            writer.write(complete[len(prefix) :])

        async def renewed() -> bool:
            return "new policy" in await echo(client)

        await until(renewed, "the completed policy applies")
    assert [event["ok"] for event in reloads(tmp_path)] == [True]
