"""A tiny stdio MCP server for `intercept run` tests: logs every line it receives to $FAKE_LOG.

tools/call behaviour by tool name: `echo` answers, `fail` answers isError, `die` exits 5 without
answering, `hang` never answers. End of input exits 7; SIGTERM exits 42.
"""

import json
import os
import signal
import sys

signal.signal(signal.SIGTERM, lambda *_: os._exit(42))
log = open(os.environ["FAKE_LOG"], "ab", buffering=0)  # noqa: SIM115 (open for the whole run)
TOOLS = [
    {
        "name": "echo",
        "inputSchema": {
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
        },
    },
    {"name": "secret", "inputSchema": {"type": "object"}},
    {"name": "fail", "inputSchema": {"type": "object"}},
]


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for raw in sys.stdin.buffer:
    log.write(raw)
    message = json.loads(raw)
    items = message if isinstance(message, list) else [message]
    for item in items:
        method, mid = item.get("method"), item.get("id")
        if mid is None or method is None:
            continue
        if method == "initialize":
            send(
                {
                    "jsonrpc": "2.0",
                    "id": mid,
                    "result": {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {"tools": {}},
                        "serverInfo": {"name": "fake", "version": "1"},
                    },
                }
            )
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS}})
        elif method == "tools/call":
            name = item["params"]["name"]
            if name == "die":
                os._exit(5)
            if name == "hang":
                continue
            text = json.dumps(item["params"].get("arguments", {}))
            send(
                {
                    "jsonrpc": "2.0",
                    "id": mid,
                    "result": {"content": [{"type": "text", "text": text}], "isError": name == "fail"},
                }
            )
        else:
            send({"jsonrpc": "2.0", "id": mid, "result": {}})
sys.exit(7)
