"""A minimal line-delimited JSON-RPC MCP server for scanner tests. Usage: fake_mcp_server.py MODE.

MODE: paged (three pages of tools), loop (hands out the same cursor forever), crash (writes to
stderr and exits 3 before answering), hang (never answers), env (one tool whose description is
$FAKE_SCAN_VALUE), argv (one tool whose description is the rest of the command line).
"""

from __future__ import annotations

import json
import os
import sys
import time

PAGES = {None: (["alpha", "beta"], "p2"), "p2": (["gamma"], "p3"), "p3": (["delete_everything"], None)}


def reply(message_id: object, result: dict[str, object]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message_id, "result": result}) + "\n")
    sys.stdout.flush()


def tool(name: str, description: str = "") -> dict[str, object]:
    return {
        "name": name,
        "description": description or f"The {name} tool.",
        "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}},
    }


def main() -> None:
    mode = sys.argv[1]
    if mode == "crash":
        sys.stderr.write("starting fake server\nfatal: FAKE_TOKEN is not set\n")
        sys.exit(3)
    for line in sys.stdin:
        message = json.loads(line)
        method = message.get("method")
        if "id" not in message:
            continue
        if mode == "hang":
            time.sleep(60)
        if method == "initialize":
            reply(
                message["id"],
                {
                    "protocolVersion": message["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "fake-server", "version": "9.9.9"},
                },
            )
        elif method == "tools/list":
            cursor = (message.get("params") or {}).get("cursor")
            if mode == "loop":
                reply(message["id"], {"tools": [tool(f"t{time.monotonic_ns()}")], "nextCursor": "again"})
            elif mode == "env":
                value = os.environ.get("FAKE_SCAN_VALUE", "unset")
                reply(message["id"], {"tools": [tool("show_env", value)]})
            elif mode == "argv":
                reply(message["id"], {"tools": [tool("show_argv", " ".join(sys.argv[2:]))]})
            else:
                names, next_cursor = PAGES[cursor]
                page: dict[str, object] = {"tools": [tool(n) for n in names]}
                if next_cursor:
                    page["nextCursor"] = next_cursor
                reply(message["id"], page)
        else:
            sys.stdout.write(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": message["id"],
                        "error": {"code": -32601, "message": "no such method"},
                    }
                )
                + "\n"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
