"""A Streamable HTTP MCP server built with the official SDK: http_mcp_server.py PORT TOKEN [CERT KEY].

Every request must carry `Authorization: Bearer TOKEN`, so a test can check that --header is sent.
With a certificate and its key (PEM files) it serves HTTPS.
"""

from __future__ import annotations

import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

server = MCPServer("http-fixture")


@server.tool()
def list_widgets(prefix: str = "") -> list[str]:
    """Lists the widgets whose names start with a prefix."""
    return [name for name in ("alpha", "beta") if name.startswith(prefix)]


@server.tool()
def delete_widget(widget_id: str) -> str:
    """Permanently deletes a widget."""
    return f"deleted {widget_id}"


def require_token(app: ASGIApp, token: str) -> ASGIApp:
    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {token}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"missing token"})
                return
        await app(scope, receive, send)

    return guarded


if __name__ == "__main__":
    port, token = int(sys.argv[1]), sys.argv[2]
    cert, key = (sys.argv[3], sys.argv[4]) if len(sys.argv) == 5 else (None, None)
    uvicorn.run(
        require_token(server.streamable_http_app(), token),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
