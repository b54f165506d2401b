"""Proxies sharing limits through a real redis-server: exact admission under load, fail modes, secrets."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import mcp.types as types
import pytest
import redis.asyncio as aioredis
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.e2e.http_support import (
    EVERYTHING,
    Service,
    everything_http,
    free_port,
    intercept_args,
    npx,
    proxy,
    raw_call,
    raw_session,
)

pytestmark = pytest.mark.e2e

LIMIT = 500
PROXIES = 4
CALLS = 2000

LOAD_POLICY = f"""\
tools:
  echo:
    rules:
      - name: shared echo budget
        rate_limit: {{max: {LIMIT}, window: 3600}}
"""


@pytest.fixture(scope="module")
def everything() -> Iterator[Service]:
    server = everything_http()
    yield server
    server.stop()


async def test_four_proxies_admit_exactly_the_limit_of_2000_concurrent_calls(
    tmp_path: Path, everything: Service, redis_server: str, redis_prefix: str
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(LOAD_POLICY)
    state = ["--state", redis_server, "--state-prefix", redis_prefix, "--no-audit"]
    proxies = [proxy(policy, *state, "--upstream", everything.url) for _ in range(PROXIES)]
    try:
        # All 2,000 calls are in flight at once; 400 sockets keep the test within a default fd limit.
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        async with httpx.AsyncClient(timeout=180, limits=limits) as client:
            sessions = await asyncio.gather(*(raw_session(client, p.url) for p in proxies))
            results = await asyncio.gather(
                *(
                    raw_call(
                        client, proxies[i % PROXIES].url, sessions[i % PROXIES], i, "echo", message=f"m{i}"
                    )
                    for i in range(CALLS)
                )
            )
    finally:
        for service in proxies:
            service.stop()
    admitted = [r for r in results if not r["result"].get("isError")]
    denied = [r for r in results if r["result"].get("isError")]
    assert len(admitted) == LIMIT
    assert len(denied) == CALLS - LIMIT
    assert all("(rule: shared echo budget)" in r["result"]["content"][0]["text"] for r in denied)
    assert {r["result"]["content"][0]["text"] for r in admitted} <= {f"Echo: m{i}" for i in range(CALLS)}
    client_redis = aioredis.Redis.from_url(redis_server)
    try:
        keys = [k async for k in client_redis.scan_iter(match=f"{redis_prefix}:s:*", count=1000)]
        sets = [k for k in keys if not k.endswith(b":sum")]
        assert len(sets) == 1
        assert await client_redis.zcard(sets[0]) == LIMIT
    finally:
        await client_redis.aclose()


FAIL_POLICY = """\
tools:
  echo:
    rules:
      - name: echo budget
        rate_limit: 5/minute
"""


@pytest.mark.parametrize(("mode", "admitted"), [("closed", False), ("open", True)])
async def test_an_unreachable_redis_follows_the_fail_mode_and_never_leaks_its_password(
    tmp_path: Path, mode: str, admitted: bool
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(FAIL_POLICY)
    audit = tmp_path / "audit.jsonl"
    stderr_path = tmp_path / "stderr.log"
    dsn = f"redis://intercept:pa55-w0rd-x@127.0.0.1:{free_port()}/0"
    args = intercept_args(
        policy,
        "--state",
        dsn,
        "--state-fail-mode",
        mode,
        "--audit-log",
        str(audit),
        "--log-level",
        "debug",
        "--",
        npx(),
        "-y",
        EVERYTHING,
        "stdio",
    )
    params = StdioServerParameters(command=args[0], args=args[1:], env=dict(os.environ))
    with stderr_path.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("echo", {"message": "hello"})
    text = "".join(c.text for c in result.content if isinstance(c, types.TextContent))
    if admitted:
        assert not result.is_error and text == "Echo: hello"
    else:
        assert result.is_error and text.startswith("[INTERCEPT POLICY DENIED]")
    logged = audit.read_text()
    assert "tool_call" in logged and "redis://intercept:***@127.0.0.1" in logged
    for output in (text, logged, stderr_path.read_text()):
        assert "pa55-w0rd-x" not in output
