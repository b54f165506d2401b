"""`intercept run --listen` under load from hostile clients, with small limits so it runs in seconds.

A real proxy process serves a real child server (the SDK's `MCPServer` over stdio) while, at
once, a flood of `initialize` requests, clients that trickle their headers a byte at a time and
clients that send most of a large body and never the rest try to hold processes, connections
and memory. The child processes and the proxy's memory (RSS from /proc) are sampled throughout;
an MCP SDK client must be served all along; afterwards, idle sessions must end and their server
processes exit. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import mcp.types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.http_support import INITIALIZE_PARAMS, SSE_ACCEPT, Service, proxy, rpc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAX_SESSIONS = 3
IDLE_SECONDS = 3
MAX_CONNECTIONS = 40
MESSAGE_BYTES = 4 << 20
BUFFERED_BYTES = 4 << 20
FLOOD = 8
TRICKLERS = 50
UNFINISHED = 16
RSS_GROWTH_LIMIT = 32 << 20
"""What the attack may add to the proxy's RSS: half of what the unfinished bodies try to hold
(64 MiB). The limits let it hold about 7 MiB of request bytes (the budget, and 64 KiB for each
connection); without the budget the proxy grew by about 65 MiB here."""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools: {}\n")
    child = [sys.executable, str(Path(__file__).with_name("modern_server.py")), "stdio"]
    limits = {
        "--max-sessions": MAX_SESSIONS,
        "--session-idle-timeout": IDLE_SECONDS,
        "--header-timeout": 1,
        "--body-timeout": 2,
        "--max-connections": MAX_CONNECTIONS,
        "--max-message-bytes": MESSAGE_BYTES,
        "--max-buffered-bytes": BUFFERED_BYTES,
    }
    options = [str(part) for option in limits.items() for part in option]
    server = proxy(policy, "--state", "memory", "--no-audit", "--log-level", "info", *options, "--", *child)
    try:
        yield server
    finally:
        server.stop()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # Field 4 of /proc/PID/stat is the parent; the name before it may contain spaces.
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Sampler:
    """The most child processes and the largest RSS seen while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.children = 0
        self.rss = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        for _ in range(2000):  # at most ~100 s; stopped long before
            self.children = max(self.children, len(children(self.pid)))
            self.rss = max(self.rss, rss(self.pid))
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def trickle_headers(port: int) -> bool:
    """Send a request's headers a byte every 0.1 s; True once the proxy ends the connection."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    try:
        writer.write(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nx-slow: " % port)
        for _ in range(100):  # ten seconds at most; the header deadline is one
            writer.write(b"a")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(1024), 0.1)
                return True  # an answer (408 or 503) or the end of the connection
        return False
    except OSError:
        return True
    finally:
        writer.close()


async def unfinished_body(port: int) -> int | None:
    """Declare a large body, send all of it but one byte, wait; the status the proxy answers
    (None if it reset the connection before an answer could be read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"accept: application/json\r\ncontent-length: {MESSAGE_BYTES}\r\n\r\n"
    )
    try:
        writer.write(head.encode())
        chunk = b" " * (1 << 16)
        for _ in range(MESSAGE_BYTES // len(chunk) - 1):
            writer.write(chunk)
            await writer.drain()
        writer.write(chunk[:-1])
        async with asyncio.timeout(15):  # the body deadline is two seconds
            answer = await reader.read()
        return int(answer.split(b" ", 2)[1]) if answer else None
    except OSError:
        return None
    finally:
        writer.close()


async def flood_initialize(url: str) -> list[httpx.Response]:
    body = rpc("initialize", 0, **INITIALIZE_PARAMS)
    async with httpx.AsyncClient(timeout=30) as client:
        return list(
            await asyncio.gather(*(client.post(url, json=body, headers=SSE_ACCEPT) for _ in range(FLOOD)))
        )


async def test_limits_hold_under_attack_and_a_well_behaved_client_is_served(service: Service) -> None:
    pid = service.process.pid
    async with (
        streamable_http_client(service.url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        baseline = rss(pid)
        sampler = Sampler(pid)

        flood = await flood_initialize(service.url)
        opened = [r.headers["mcp-session-id"] for r in flood if r.status_code == 200]
        refused = [r for r in flood if r.status_code == 503]
        assert len(opened) == MAX_SESSIONS - 1 and len(refused) == FLOOD - len(opened)
        assert all("--max-sessions" in r.json()["error"]["message"] for r in refused)

        async def well_behaved() -> list[str]:
            texts = []
            for n in range(20):
                result = await session.call_tool("echo", {"message": f"call {n}"})
                assert not result.is_error
                texts.append("".join(c.text for c in result.content if isinstance(c, types.TextContent)))
                await asyncio.sleep(0.1)
            return texts

        attack = asyncio.gather(
            asyncio.gather(*(trickle_headers(service.port) for _ in range(TRICKLERS))),
            asyncio.gather(*(unfinished_body(service.port) for _ in range(UNFINISHED))),
        )
        texts = await well_behaved()
        trickled, bodies = await attack
        await sampler.stop()

        assert texts == [f"Echo: call {n}" for n in range(20)]
        assert all(trickled), "a client trickling its headers kept its connection"
        assert set(bodies) <= {408, 503, None} and {408, 503} <= set(bodies)
        assert sampler.children <= MAX_SESSIONS
        assert sampler.rss - baseline < RSS_GROWTH_LIMIT, (baseline, sampler.rss)

        # The flood's sessions see no requests: they end, and so do their server processes.
        async with asyncio.timeout(IDLE_SECONDS * 5):
            while len(children(pid)) > 1:
                await asyncio.sleep(0.1)
        async with httpx.AsyncClient() as client:
            for sid in opened:
                ping = rpc("ping", 1)
                gone = await client.post(
                    service.url, json=ping, headers={**SSE_ACCEPT, "mcp-session-id": sid}
                )
                assert gone.status_code == 404
        # The SDK client's session, which holds its GET stream open, is still served.
        result = await session.call_tool("echo", {"message": "after"})
        assert not result.is_error
    log = service.log.read_text()
    assert "Traceback" not in log and "session" in log and "idle" in log
    async with asyncio.timeout(30):
        while children(pid):
            await asyncio.sleep(0.1)
    assert os.path.exists(f"/proc/{pid}")  # the proxy itself keeps serving
