"""`intercept run` over Streamable HTTP, both sides, with the official MCP SDK client and server-everything.

Three transport shapes get the same checks, so enforcement is proven identical on every path:

* stdio client -> `--upstream` (server-everything streamableHttp);
* HTTP client -> `--listen` -> stdio child (server-everything stdio);
* HTTP client -> `--listen --upstream` (server-everything streamableHttp).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.http_support import (
    EVERYTHING,
    SSE_ACCEPT,
    Service,
    everything_http,
    free_port,
    intercept_args,
    npx,
    proxy,
    raw_session,
    rpc,
    sse_messages,
)

pytestmark = pytest.mark.e2e

POLICY = """\
hide: [get-tiny-image]
tools:
  echo:
    rules:
      - name: echo limit
        rate_limit: {max: 3, window: 3600}
  get-sum:
    rules:
      - name: small sums
        conditions:
          - {path: args.a, op: lte, value: 100}
        on_deny: "a must be at most 100"
"""

SHAPES = ["stdio-to-http", "http-to-stdio", "http-to-http"]


@pytest.fixture(scope="module")
def everything() -> Iterator[Service]:
    server = everything_http()
    yield server
    server.stop()


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


async def _sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="sampled-through-proxy"), model="fake"
    )


async def _roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///srv/intercept-root", name="proxied root")])


async def _elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada Lovelace"})


@asynccontextmanager
async def connect(
    shape: str, policy: Path, everything: Service, tmp_path: Path
) -> AsyncIterator[ClientSession]:
    """A ready MCP client session through `intercept run` in the given transport shape."""
    state = ["--state", "memory", "--audit-log", str(tmp_path / "audit.jsonl")]
    callbacks: dict[str, Any] = {
        "sampling_callback": _sampling,
        "elicitation_callback": _elicitation,
        "list_roots_callback": _roots,
    }
    if shape == "stdio-to-http":
        args = intercept_args(policy, *state, "--upstream", everything.url)
        params = StdioServerParameters(command=args[0], args=args[1:], env=dict(os.environ))
        async with stdio_client(params) as (read, write), ClientSession(read, write, **callbacks) as session:
            await session.initialize()
            yield session
        return
    upstream = (
        ["--upstream", everything.url]
        if shape == "http-to-http"
        else ["--", npx(), "-y", EVERYTHING, "stdio"]
    )
    service = proxy(policy, *state, *upstream)
    try:
        async with (
            streamable_http_client(service.url) as (read, write),
            ClientSession(read, write, **callbacks) as session,
        ):
            await session.initialize()
            yield session
    finally:
        service.stop()


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@asynccontextmanager
async def two_sessions(url: str) -> AsyncIterator[tuple[ClientSession, ClientSession]]:
    """Two initialized MCP client sessions at `url`, each on its own connection."""
    async with (
        streamable_http_client(url) as (r1, w1),
        ClientSession(r1, w1) as one,
        streamable_http_client(url) as (r2, w2),
        ClientSession(r2, w2) as two,
    ):
        await asyncio.gather(one.initialize(), two.initialize())
        yield one, two


@pytest.mark.parametrize("shape", SHAPES)
async def test_policy_is_enforced_the_same_on_every_transport_shape(
    shape: str, policy: Path, everything: Service, tmp_path: Path
) -> None:
    async with (
        streamable_http_client(everything.url) as (read, write),
        ClientSession(read, write) as direct,
    ):
        await direct.initialize()
        direct_sum = await direct.call_tool("get-sum", {"a": 2, "b": 3})
    async with connect(shape, policy, everything, tmp_path) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "echo" in names and "get-sum" in names
        assert "get-tiny-image" not in names

        proxied_sum = await session.call_tool("get-sum", {"a": 2, "b": 3})
        assert proxied_sum.content == direct_sum.content and not proxied_sum.is_error

        big = await session.call_tool("get-sum", {"a": 1000, "b": 1})
        assert (
            big.is_error
            and text_of(big) == "[INTERCEPT POLICY DENIED] a must be at most 100 (rule: small sums)"
        )

        hidden = await session.call_tool("get-tiny-image", {})
        assert hidden.is_error and text_of(hidden).startswith("[INTERCEPT POLICY DENIED]")

        echoes = [await session.call_tool("echo", {"message": f"m{i}"}) for i in range(4)]
        assert [e.is_error for e in echoes] == [False, False, False, True]
        assert text_of(echoes[0]) == "Echo: m0"
        assert "echo limit" in text_of(echoes[3])


@pytest.mark.parametrize("shape", SHAPES)
async def test_server_to_client_requests_and_progress_pass_through(
    shape: str, policy: Path, everything: Service, tmp_path: Path
) -> None:
    progress_seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        progress_seen.append(progress)

    async with connect(shape, policy, everything, tmp_path) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"} <= names

        # roots/list: asked by the server after initialization (or during the call if it got none then).
        roots = await session.call_tool("get-roots-list", {})
        assert "file:///srv/intercept-root" in text_of(roots)

        sampled = await session.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
        assert "sampled-through-proxy" in text_of(sampled)

        elicited = await session.call_tool("trigger-elicitation-request", {})
        assert "Ada Lovelace" in text_of(elicited)

        done = await session.call_tool(
            "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
        )
        assert not done.is_error
        assert progress_seen == [1, 2, 3]


async def test_an_unreachable_upstream_answers_with_a_json_rpc_error(policy: Path, tmp_path: Path) -> None:
    args = intercept_args(
        policy, "--state", "memory", "--no-audit", "--upstream", f"http://127.0.0.1:{free_port()}/mcp"
    )
    params = StdioServerParameters(command=args[0], args=args[1:], env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        with pytest.raises(Exception, match="unreachable"):
            await asyncio.wait_for(session.initialize(), 30)


async def test_listener_checks_tokens_hosts_and_mcp_name_headers(policy: Path, everything: Service) -> None:
    service = proxy(
        policy, "--state", "memory", "--no-audit", "--client-token", "tok", "--upstream", everything.url
    )
    auth = {"authorization": "Bearer tok"}
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            denied = await client.post(service.url, json=rpc("initialize", 0), headers=SSE_ACCEPT)
            assert denied.status_code == 401
            rebound = await client.post(
                service.url, json=rpc("initialize", 0), headers={**SSE_ACCEPT, **auth, "host": "evil.example"}
            )
            assert rebound.status_code == 421
            sid = await raw_session(client, service.url, auth)
            session_headers = {**SSE_ACCEPT, **auth, "mcp-session-id": sid}
            spoofed = await client.post(
                service.url,
                json=rpc("tools/call", 1, name="get-tiny-image", arguments={}),
                headers={**session_headers, "mcp-method": "tools/call", "mcp-name": "echo"},
            )
            assert spoofed.status_code == 400
            assert spoofed.json()["error"]["code"] == -32020
            honest = await client.post(
                service.url,
                json=rpc("tools/call", 2, name="echo", arguments={"message": "x"}),
                headers={**session_headers, "mcp-method": "tools/call", "mcp-name": "echo"},
            )
            assert sse_messages(honest.text)[-1]["result"]["content"][0]["text"] == "Echo: x"
    finally:
        service.stop()


async def test_sessions_are_isolated_between_clients(
    policy: Path, everything: Service, tmp_path: Path
) -> None:
    service = proxy(policy, "--state", "memory", "--no-audit", "--upstream", everything.url)
    try:
        async with two_sessions(service.url) as (one, two):
            first, second = await asyncio.gather(
                *(s.call_tool("echo", {"message": name}) for s, name in ((one, "one"), (two, "two")))
            )
            assert text_of(first) == "Echo: one" and text_of(second) == "Echo: two"
        async with httpx.AsyncClient(timeout=30) as client:
            a, b = await raw_session(client, service.url), await raw_session(client, service.url)
            assert a != b
            stolen = await client.post(
                service.url, json=rpc("tools/list", 1), headers={**SSE_ACCEPT, "mcp-session-id": a + "x"}
            )
            assert stolen.status_code == 404
    finally:
        service.stop()


async def test_a_batch_posted_to_the_listener_is_checked_element_by_element(
    policy: Path, everything: Service
) -> None:
    service = proxy(policy, "--state", "memory", "--no-audit", "--upstream", everything.url)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            sid = await raw_session(client, service.url)
            batch = [
                rpc("tools/call", 1, name="echo", arguments={"message": "allowed"}),
                rpc("tools/call", 2, name="get-sum", arguments={"a": 1000, "b": 1}),
                rpc("tools/call", 3, name="get-tiny-image", arguments={}),
            ]
            response = await client.post(
                service.url, json=batch, headers={**SSE_ACCEPT, "mcp-session-id": sid}
            )
    finally:
        service.stop()
    answers: dict[int, Any] = {}
    for message in sse_messages(response.text):
        for item in message if isinstance(message, list) else [message]:
            answers[item["id"]] = item["result"]
    assert sorted(answers) == [1, 2, 3]
    assert answers[1]["content"][0]["text"] == "Echo: allowed"
    for denied in (answers[2], answers[3]):
        assert denied["isError"] and denied["content"][0]["text"].startswith("[INTERCEPT POLICY DENIED]")


PATIENT = Path(__file__).with_name("patient_sqlite.py")


async def test_a_call_waiting_for_a_locked_sqlite_store_holds_up_no_other_session(
    policy: Path, everything: Service, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    port = free_port()
    service = Service(
        [
            sys.executable,
            str(PATIENT),
            "run",
            "-c",
            str(policy),
            "--no-watch",
            "--no-audit",
            "--state-dir",
            str(state_dir),
            "--listen",
            f"127.0.0.1:{port}",
            "--upstream",
            everything.url,
        ],
        port,
    )
    try:
        async with two_sessions(service.url) as (one, two):
            # Another process (as another proxy on this machine would) holds the write lock.
            locker = sqlite3.connect(state_dir / "counters.sqlite3", isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            try:
                counted = asyncio.create_task(one.call_tool("echo", {"message": "waited"}))
                await asyncio.sleep(0.5)  # lets the counted call reach the proxy first
                listed = await asyncio.wait_for(two.list_tools(), 60)
                summed = await asyncio.wait_for(two.call_tool("get-sum", {"a": 2, "b": 3}), 60)
                assert "echo" in {tool.name for tool in listed.tools}
                assert not summed.is_error and "5" in text_of(summed)
                assert not counted.done()
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            echoed = await asyncio.wait_for(counted, 60)
            assert not echoed.is_error and text_of(echoed) == "Echo: waited"
    finally:
        service.stop()
