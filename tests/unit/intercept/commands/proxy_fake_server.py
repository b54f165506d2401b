"""A tiny stdio MCP server for `intercept run` tests: logs every line it receives to $FAKE_LOG.

tools/call behaviour by tool name: `echo` answers, `fail` answers isError, `die` exits 5 without
answering, `hang` never answers, `close_stdout` closes stdout without answering and keeps reading.
End of input exits 7; SIGTERM exits 42; SIGINT exits 43.

With FAKE_LINGER set, end of input does not end it: it writes a last notification and sleeps.
With FAKE_IGNORE_TERM set, SIGTERM is ignored.
"""

import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

signal.signal(
    signal.SIGTERM, signal.SIG_IGN if os.environ.get("FAKE_IGNORE_TERM") else lambda *_: os._exit(42)
)
signal.signal(signal.SIGINT, lambda *_: os._exit(43))
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


def send(message: dict[str, Any]) -> None:
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
            if name == "close_stdout":
                os.close(1)
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
if os.environ.get("FAKE_LINGER"):
    with contextlib.suppress(OSError):  # stdout may be closed already (close_stdout)
        send(
            {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "bye"}}
        )
    time.sleep(60)  # long enough for any test; an orphan still goes away
sys.exit(7)
