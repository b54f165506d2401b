"""An MCP server with a slow tool that records each run: counting_server.py RUNS_FILE (stdio|PORT).

Written for both generations of the official Python SDK, so the counting tests can put the
proxy in front of each: 2.x (`MCPServer`, this project's test dependency) and 1.x (`FastMCP`,
installed in a separate venv by the tests). `slow` appends a line to RUNS_FILE as soon as it
starts, before it sleeps, so a test knows the tool is running and how often it ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

try:
    from mcp.server.mcpserver import MCPServer as Server
except ImportError:  # the 1.x SDK
    from mcp.server.fastmcp import FastMCP as Server  # type: ignore[no-redef,attr-defined]

RUNS = Path(sys.argv[1])
server = Server("intercept-counting-test")


@server.tool()
async def slow(seconds: float = 60.0) -> str:
    """Record a run, then wait `seconds` before answering."""
    with RUNS.open("a") as runs:
        runs.write("run\n")
    await anyio.sleep(seconds)
    return "done"


@server.tool()
def secret() -> str:
    """A tool the test policies hide."""
    return "hidden"


if __name__ == "__main__":
    if sys.argv[2] == "stdio":
        server.run(transport="stdio")
    else:
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
