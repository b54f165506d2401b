"""A small MCP server from the official Python SDK, serving Streamable HTTP on 127.0.0.1:<port>.

It speaks both the 2025-11-25 session protocol and the 2026-07-28 stateless one, so the e2e tests
can put `intercept run` in front of a real 2026-07-28 server.

    python tests/e2e/modern_server.py PORT      # Streamable HTTP on 127.0.0.1:PORT
    python tests/e2e/modern_server.py stdio     # stdio (both eras, decided by the first request)
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("intercept-modern-test")


@server.tool()
def echo(message: str) -> str:
    """Return the message."""
    return f"Echo: {message}"


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run(transport="stdio")
    else:
        server.run(transport="streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
