"""Two `intercept run` processes on one SQLite state directory share a rate limit exactly.

Each proxy fronts its own small stdio server and gets the same burst of calls at the same time;
the limit is counted across both, as the reserve step is one SQLite transaction.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.proxy_helpers import DENIED, INTERCEPT

pytestmark = pytest.mark.e2e

ECHO_SERVER = """
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue
    if message["method"] == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                  "serverInfo": {"name": "echo", "version": "1"}}
    else:
        result = {"content": [{"type": "text", "text": "ran"}]}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}) + "\\n")
    sys.stdout.flush()
"""
INIT = (
    b'{"jsonrpc":"2.0","id":"i","method":"initialize","params":{"protocolVersion":"2025-06-18",'
    b'"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}\n'
    b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
)
CALLS_PER_PROXY = 40
LIMIT = 25


def test_two_proxies_on_one_state_directory_admit_exactly_the_limit(tmp_path: Path) -> None:
    server = tmp_path / "echo_server.py"
    server.write_text(ECHO_SERVER)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"tools:\n  work:\n    rules:\n      - rate_limit: {{max: {LIMIT}, window: 3600}}\n")
    state = tmp_path / "state"
    command = [
        INTERCEPT,
        "run",
        "-c",
        str(policy),
        "--no-watch",
        "--state-dir",
        str(state),
        "--no-audit",
        "--",
        sys.executable,
        str(server),
    ]
    call = b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"work","arguments":{}}}\n'
    payload = INIT + b"".join(call % n for n in range(CALLS_PER_PROXY))
    proxies = [
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=os.environ.copy(),
        )
        for _ in range(2)
    ]
    for process in proxies:  # both bursts are in flight before either is read
        assert process.stdin is not None
        process.stdin.write(payload)
        process.stdin.flush()
    outputs = [process.communicate(timeout=120)[0] for process in proxies]

    ran = denied = 0
    for output in outputs:
        answers = [json.loads(line) for line in output.splitlines()]
        calls = [a for a in answers if isinstance(a.get("id"), int)]
        assert len(calls) == CALLS_PER_PROXY
        for answer in calls:
            text = answer["result"]["content"][0]["text"]
            ran += text == "ran"
            denied += text.startswith(DENIED)
    assert (ran, denied) == (LIMIT, 2 * CALLS_PER_PROXY - LIMIT)
    assert all(process.returncode == 0 for process in proxies)
