"""The 2026-07-28 stateless protocol through `intercept run`, with the official SDK on both ends.

The upstream is an `MCPServer` from the MCP Python SDK (tests/e2e/modern_server.py), which serves
2026-07-28 requests without sessions and checks `Mcp-Method`, `Mcp-Name` and
`MCP-Protocol-Version` against each body. The client is the SDK's `Client` pinned to 2026-07-28.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
import pytest
from mcp import Client, StdioServerParameters

from tests.e2e.http_support import (
    MODERN,
    MODERN_META,
    SSE_ACCEPT,
    Service,
    free_port,
    intercept_args,
    proxy,
    rpc,
    sse_messages,
)

pytestmark = pytest.mark.e2e

META = MODERN_META
POLICY = """\
hide: [echo]
tools:
  add:
    rules:
      - name: small sums
        conditions:
          - {path: args.a, op: lte, value: 100}
        on_deny: "a must be at most 100"
      - name: add budget
        rate_limit: {max: 3, window: 3600}
"""


@pytest.fixture(scope="module")
def modern() -> Iterator[Service]:
    port = free_port()
    script = Path(__file__).with_name("modern_server.py")
    server = Service([sys.executable, str(script), str(port)], port)
    yield server
    server.stop()


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@asynccontextmanager
async def connect(shape: str, policy: Path, modern: Service) -> AsyncIterator[Client]:
    state = ["--state", "memory", "--no-audit", "--upstream", modern.url]
    if shape == "stdio-to-http":
        args = intercept_args(policy, *state)
        params = StdioServerParameters(command=args[0], args=args[1:], env=dict(os.environ))
        async with Client(params, mode=MODERN) as client:
            yield client
        return
    service = proxy(policy, *state)
    try:
        async with Client(service.url, mode=MODERN) as client:
            yield client
    finally:
        service.stop()


def text_of(result: types.CallToolResult) -> str:
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


@pytest.mark.parametrize("shape", ["stdio-to-http", "http-to-http"])
async def test_policy_is_enforced_on_2026_07_28_stateless_traffic(
    shape: str, policy: Path, modern: Service
) -> None:
    async with connect(shape, policy, modern) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert names == ["add"]
        hidden = await client.call_tool("echo", {"message": "x"})
        assert hidden.is_error and text_of(hidden).startswith("[INTERCEPT POLICY DENIED]")
        big = await client.call_tool("add", {"a": 1000, "b": 1})
        assert big.is_error and "a must be at most 100 (rule: small sums)" in text_of(big)
        sums = [await client.call_tool("add", {"a": i, "b": 1}) for i in range(4)]
        assert [text_of(s) for s in sums[:3]] == ["1", "2", "3"]
        assert sums[3].is_error and "(rule: add budget)" in text_of(sums[3])


async def test_stateless_requests_get_no_session_and_mismatched_headers_are_refused(
    policy: Path, modern: Service
) -> None:
    service = proxy(policy, "--state", "memory", "--no-audit", "--upstream", modern.url)
    call = rpc("tools/call", 1, name="add", arguments={"a": 1, "b": 2}, **META)
    honest = {**SSE_ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "add"}
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            answered = await client.post(service.url, json=call, headers=honest)
            spoofed = await client.post(service.url, json=call, headers={**honest, "mcp-name": "echo"})
            unnamed = await client.post(
                service.url, json=call, headers={k: v for k, v in honest.items() if k != "mcp-name"}
            )
            wrong_version = await client.post(
                service.url, json=call, headers={**honest, "mcp-protocol-version": "2027-01-01"}
            )
    finally:
        service.stop()
    assert answered.status_code == 200 and "mcp-session-id" not in answered.headers
    messages: list[Any] = (
        sse_messages(answered.text)
        if "event-stream" in answered.headers["content-type"]
        else [answered.json()]
    )
    assert messages[-1]["result"]["content"][0]["text"] == "3"
    for refused in (spoofed, unnamed, wrong_version):
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == -32020


MODERN_STDIO = [sys.executable, str(Path(__file__).with_name("modern_server.py")), "stdio"]


async def test_stateless_clients_in_front_of_a_stdio_child_get_the_same_enforcement(policy: Path) -> None:
    """One shared child serves every stateless request; ids and progress tokens never cross."""
    service = proxy(policy, "--state", "memory", "--no-audit", "--", *MODERN_STDIO)
    try:
        async with Client(service.url, mode=MODERN) as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["add"]
            hidden = await client.call_tool("echo", {"message": "x"})
            assert hidden.is_error and text_of(hidden).startswith("[INTERCEPT POLICY DENIED]")
            big = await client.call_tool("add", {"a": 1000, "b": 1})
            assert big.is_error and "(rule: small sums)" in text_of(big)
        call_headers = {
            **SSE_ACCEPT,
            "mcp-protocol-version": MODERN,
            "mcp-method": "tools/call",
            "mcp-name": "add",
        }
        async with httpx.AsyncClient(timeout=30) as raw:
            # Every request uses id 1: the shared child must still answer each its own sum.
            concurrent = await asyncio.gather(
                *(
                    raw.post(
                        service.url,
                        json=rpc("tools/call", 1, name="add", arguments={"a": i, "b": 10}, **META),
                        headers=call_headers,
                    )
                    for i in range(3)
                )
            )
            over_budget = await raw.post(
                service.url,
                json=rpc("tools/call", 1, name="add", arguments={"a": 5, "b": 5}, **META),
                headers=call_headers,
            )
            spoofed = await raw.post(
                service.url,
                json=rpc("tools/call", 2, name="add", arguments={"a": 1, "b": 1}, **META),
                headers={**call_headers, "mcp-name": "echo"},
            )
            batch = await raw.post(
                service.url,
                json=[rpc("tools/list", 3, **META), rpc("tools/list", 4, **META)],
                headers={**SSE_ACCEPT, "mcp-protocol-version": MODERN},
            )
    finally:
        service.stop()
    answers = [answer_of(response) for response in concurrent]
    assert sorted(a["result"]["content"][0]["text"] for a in answers) == ["10", "11", "12"]
    assert all(
        a["id"] == 1 and "mcp-session-id" not in r.headers for a, r in zip(answers, concurrent, strict=True)
    )
    budget = answer_of(over_budget)["result"]
    assert budget["isError"] and "(rule: add budget)" in budget["content"][0]["text"]
    assert spoofed.status_code == 400 and spoofed.json()["error"]["code"] == -32020
    assert batch.status_code == 400


def answer_of(response: httpx.Response) -> Any:
    if "event-stream" in response.headers["content-type"]:
        return sse_messages(response.text)[-1]
    return response.json()


async def test_an_upstream_http_error_status_reaches_the_client_unchanged(
    policy: Path, modern: Service
) -> None:
    """The upstream refuses with 400 or 404 and a JSON-RPC error; the listener answers the same."""
    half_envelope = {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}}
    cases = [
        (rpc("tools/list", 1, **half_envelope), {"mcp-method": "tools/list"}),
        (rpc("no/such-method", 2, **META), {"mcp-method": "no/such-method"}),
    ]
    service = proxy(policy, "--state", "memory", "--no-audit", "--upstream", modern.url)
    results: list[tuple[httpx.Response, httpx.Response]] = []
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for body, extra in cases:
                headers = {**SSE_ACCEPT, "mcp-protocol-version": MODERN, **extra}
                direct = await client.post(modern.url, json=body, headers=headers)
                proxied = await client.post(service.url, json=body, headers=headers)
                results.append((direct, proxied))
    finally:
        service.stop()
    assert [d.status_code for d, _ in results] == [400, 404]
    for direct, proxied in results:
        assert proxied.status_code == direct.status_code
        assert proxied.headers["content-type"] == "application/json"
        assert proxied.json()["id"] == direct.json()["id"]
        assert proxied.json()["error"] == direct.json()["error"]


VALIDATING_POLICY = """\
tools:
  add:
    rules:
      - action: allow
        validate:
          required_args: true
"""


@pytest.mark.parametrize("shape", ["stdio-to-http", "http-to-http"])
async def test_the_proxy_learns_schemas_from_a_stateless_upstream_before_the_first_call(
    shape: str, tmp_path: Path, modern: Service
) -> None:
    """A validated call arrives before any tools/list: the proxy lists the tools itself, with the
    2026-07-28 envelope the server requires, and decides on the schema it got."""
    policy = tmp_path / "validating.yaml"
    policy.write_text(VALIDATING_POLICY)
    async with connect(shape, policy, modern) as client:
        missing = await client.call_tool("add", {"a": 1})
        assert (
            missing.is_error and "b" in text_of(missing) and "[INTERCEPT POLICY DENIED]" in text_of(missing)
        )
        complete = await client.call_tool("add", {"a": 1, "b": 2})
        assert not complete.is_error and text_of(complete) == "3"
