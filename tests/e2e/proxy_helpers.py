"""Shared helpers for the proxy's end-to-end tests: an MCP SDK session through `intercept run`."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

INTERCEPT = str(Path(sys.executable).with_name("intercept"))
EVERYTHING = ["npx", "-y", "@modelcontextprotocol/server-everything", "stdio"]
DENIED = "[INTERCEPT POLICY DENIED]"


def child_env(home: Path) -> dict[str, str]:
    """What the SDK passes the child: PATH (for npx), HOME (npm cache, ~/.intercept)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "NPM_CONFIG_CACHE": os.environ.get("NPM_CONFIG_CACHE", str(Path.home() / ".npm")),
    }


def proxied(policy: Path, server: Sequence[str], home: Path, *options: str) -> StdioServerParameters:
    args = [
        "run",
        "-c",
        str(policy),
        "--state",
        "memory",
        "--audit-log",
        str(home / "audit.jsonl"),
        *options,
        "--",
        *server,
    ]
    return StdioServerParameters(command=INTERCEPT, args=args, env=child_env(home))


def direct(server: Sequence[str], home: Path) -> StdioServerParameters:
    return StdioServerParameters(command=server[0], args=list(server[1:]), env=child_env(home))


@asynccontextmanager
async def session(
    params: StdioServerParameters, stderr: Path | None = None, **callbacks: Any
) -> AsyncIterator[ClientSession]:
    # The servers' banners on stderr are noise here, unless a test reads the proxy's log.
    with open(stderr or os.devnull, "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=60, **callbacks) as client,
        ):
            await client.initialize()
            yield client


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def comparable(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = result.model_dump(mode="json", exclude_none=True)
    return data
