"""`intercept run` in front of server-everything, driven by the official MCP SDK client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types

from tests.e2e.proxy_helpers import DENIED, EVERYTHING, comparable, direct, proxied, session, text_of

pytestmark = pytest.mark.e2e

POLICY = """
hide: [get-env]
tools:
  echo:
    rules:
      - name: no drop
        action: deny
        conditions:
          - path: args.message
            op: contains
            value: DROP
        reason: destructive SQL is not allowed
      - validate: {required_args: true}
  get-sum:
    rules:
      - name: three sums a minute
        rate_limit: {max: 3, window: 60}
"""


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


async def test_allowed_calls_and_listings_are_identical_to_direct(policy: Path, tmp_path: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("echo", {"message": "héllo ✓"}),
        ("get-sum", {"a": 2, "b": 40}),
        ("get-structured-content", {"location": "Chicago"}),
        ("get-tiny-image", {}),
    ]
    results: dict[str, list[dict[str, Any]]] = {}
    listings: dict[str, list[str]] = {}
    for label, params in (
        ("direct", direct(EVERYTHING, tmp_path)),
        ("proxied", proxied(policy, EVERYTHING, tmp_path)),
    ):
        async with session(params) as client:
            listings[label] = [t.name for t in (await client.list_tools()).tools]
            results[label] = [comparable(await client.call_tool(name, args)) for name, args in calls]
    assert results["proxied"] == results["direct"]
    assert "get-env" in listings["direct"]
    assert listings["proxied"] == [name for name in listings["direct"] if name != "get-env"]


async def test_denied_and_hidden_tools(policy: Path, tmp_path: Path) -> None:
    async with session(proxied(policy, EVERYTHING, tmp_path)) as client:
        hidden = await client.call_tool("get-env", {})
        assert hidden.is_error and text_of(hidden) == f"{DENIED} tool is hidden by policy (rule: hide)"
        denied = await client.call_tool("echo", {"message": "x; DROP TABLE users"})
        assert (
            denied.is_error and text_of(denied) == f"{DENIED} destructive SQL is not allowed (rule: no drop)"
        )
        assert text_of(await client.call_tool("echo", {"message": "fine"})) == "Echo: fine"
        for lookalike in ("Get-Env", "get-env "):
            assert DENIED not in text_of(
                await client.call_tool(lookalike, {})
            )  # not hidden: the server answers


async def test_rate_limit_denies_exactly_the_max_plus_first_call(policy: Path, tmp_path: Path) -> None:
    async with session(proxied(policy, EVERYTHING, tmp_path)) as client:
        for i in range(3):
            result = await client.call_tool("get-sum", {"a": i, "b": 1})
            assert not result.is_error and str(i + 1) in text_of(result)
        fourth = await client.call_tool("get-sum", {"a": 1, "b": 1})
        assert fourth.is_error
        assert (
            text_of(fourth) == f"{DENIED} rate limit of 3 calls per 60 s reached (rule: three sums a minute)"
        )


async def test_required_args_before_any_listing(policy: Path, tmp_path: Path) -> None:
    async with session(proxied(policy, EVERYTHING, tmp_path)) as client:
        missing = await client.call_tool("echo", {})
        assert missing.is_error
        assert text_of(missing) == f"{DENIED} missing required argument: message (rule: tools.echo.rules[1])"
        assert text_of(await client.call_tool("echo", {"message": "ok"})) == "Echo: ok"


async def test_sampling_elicitation_roots_progress_and_notifications_pass_through(
    policy: Path, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {"notifications": [], "progress": []}

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        seen["sampling"] = params
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="sampled-42"), model="test-model"
        )

    async def elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen["elicitation"] = params
        return types.ElicitResult(action="accept", content={"name": "Ada", "color": "red"})

    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/e2e-root", name="e2e-root")])

    async def messages(message: Any) -> None:
        seen["notifications"].append(message)

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen["progress"].append((progress, total))

    async with session(
        proxied(policy, EVERYTHING, tmp_path),
        sampling_callback=sampling,
        elicitation_callback=elicitation,
        list_roots_callback=roots,
        message_handler=messages,
    ) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"} <= names
        sampled = await client.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 10})
        assert "sampled-42" in text_of(sampled)
        elicited = await client.call_tool("trigger-elicitation-request", {})
        assert "elicitation" in seen and "Ada" in text_of(elicited)
        listed_roots = await client.call_tool("get-roots-list", {})
        assert "file:///tmp/e2e-root" in text_of(listed_roots)
        long = await client.call_tool(
            "trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=progress
        )
        assert not long.is_error and len(seen["progress"]) == 3
        with anyio.fail_after(10):
            while not any(isinstance(n, types.ToolListChangedNotification) for n in seen["notifications"]):
                await anyio.sleep(0.05)


async def test_failed_calls_consume_no_quota_and_cancelled_calls_stay_counted(tmp_path: Path) -> None:
    policy = tmp_path / "quota.yaml"
    policy.write_text(
        "tools:\n  get-sum:\n    rules:\n      - rate_limit: {max: 2, window: 60}\n"
        "  trigger-long-running-operation:\n    rules:\n      - rate_limit: {max: 1, window: 60}\n"
    )
    async with session(proxied(policy, EVERYTHING, tmp_path)) as client:
        for _ in range(3):  # the server rejects these arguments: failed calls give their quota back
            failed = await client.call_tool("get-sum", {"a": "not a number", "b": 1})
            assert failed.is_error and DENIED not in text_of(failed)
        assert not (await client.call_tool("get-sum", {"a": 1, "b": 2})).is_error
        assert not (await client.call_tool("get-sum", {"a": 3, "b": 4})).is_error
        assert DENIED in text_of(await client.call_tool("get-sum", {"a": 5, "b": 6}))

        # The SDK sends notifications/cancelled; server-everything does not answer it and keeps
        # the operation running, so the cancelled call keeps its quota: calling and cancelling
        # must not run a limited tool past its limit.
        with anyio.move_on_after(1.0) as scope:
            await client.call_tool("trigger-long-running-operation", {"duration": 30, "steps": 30})
        assert scope.cancelled_caught
        again = await client.call_tool("trigger-long-running-operation", {"duration": 1, "steps": 1})
        assert again.is_error and DENIED in text_of(again)
