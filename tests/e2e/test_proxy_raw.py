"""Raw bytes written to `intercept run`'s stdin, in front of server-everything behind a stdin recorder.

These are the attacks an SDK client cannot produce: duplicate keys, broken UTF-8, lone
surrogates, batches smuggling a denied call. The recorder shows what reached the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.proxy_helpers import DENIED, EVERYTHING, INTERCEPT

pytestmark = pytest.mark.e2e

RECORDER = str(Path(__file__).with_name("stdin_recorder.py"))
POLICY = "hide: [get-env]\ntools:\n  get-sum:\n    rules:\n      - action: deny\n        reason: no sums\n"
INIT = (
    b'{"jsonrpc":"2.0","id":"i","method":"initialize","params":{"protocolVersion":"2025-06-18",'
    b'"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}\n'
    b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
)
ATTACKS = [
    # duplicate keys: a parser keeping the first name sees echo, one keeping the last sees get-env
    b'{"jsonrpc":"2.0","id":"dup","method":"tools/call","params":{"name":"echo","name":"get-env","arguments":{}}}',
    b'{"jsonrpc":"2.0","id":"utf8","method":"tools/call","params":{"name":"get-env\xff","arguments":{}}}',
    b'{"jsonrpc":"2.0","id":"surrogate","method":"tools/call","params":{"name":"get-env\\ud800","arguments":{}}}',
    b'{"jsonrpc":"2.0","id":"nonstring","method":"tools/call","params":{"name":["get-env"]}}',
    b'{"jsonrpc":"2.0","id":"params","method":"tools/call","params":["get-env"]}',
    b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get-env","arguments":{}}}',
    b'[{"jsonrpc":"2.0","id":"b1","method":"tools/call","params":{"name":"get-env","arguments":{}}},'
    b'{"jsonrpc":"2.0","id":"b2","method":"tools/call","params":{"name":"get-sum","arguments":{"a":1,"b":2}}},'
    b'{"jsonrpc":"2.0","id":"b3","method":"tools/call",'
    b'"params":{"name":"echo","arguments":{"message":"batch ok"}}}]',
    b'{"jsonrpc":"2.0","id":"last","method":"tools/call","params":{"name":"echo","arguments":{"message":"end"}}}',
]


def run_raw(tmp_path: Path, payload: bytes) -> tuple[list[Any], str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    received = tmp_path / "received.jsonl"
    received.write_bytes(b"")
    command = [
        INTERCEPT,
        "run",
        "-c",
        str(policy),
        "--state",
        "memory",
        "--no-audit",
        "--",
        sys.executable,
        RECORDER,
        str(received),
        "--",
        *EVERYTHING,
    ]
    # Keep stdin open until the last answer is in, so in-flight calls are not cut off.
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(payload)
    process.stdin.flush()
    messages: list[Any] = []
    for line in process.stdout:
        message = json.loads(line)
        messages.append(message)
        if isinstance(message, dict) and message.get("id") == "last":
            break
    process.stdin.close()
    process.wait(30)
    process.stdout.close()
    return messages, received.read_text(errors="replace")


def test_malformed_and_smuggled_calls_never_reach_the_server(tmp_path: Path) -> None:
    messages, received = run_raw(tmp_path, INIT + b"\n".join(ATTACKS) + b"\n")
    flat = [m for message in messages for m in (message if isinstance(message, list) else [message])]
    by_id = {m.get("id"): m for m in flat if isinstance(m, dict) and "id" in m}
    for rejected in ("surrogate", "nonstring", "params"):
        assert by_id[rejected]["error"]["code"] in (-32700, -32600, -32602), rejected
    errors_without_id = [m for m in flat if m.get("id") is None and "error" in m]
    assert len(errors_without_id) == 3  # duplicate keys, invalid UTF-8 (unparseable), tools/call without id
    assert by_id["b1"]["result"]["content"][0]["text"] == f"{DENIED} tool is hidden by policy (rule: hide)"
    assert by_id["b2"]["result"]["content"][0]["text"] == f"{DENIED} no sums (rule: tools.get-sum.rules[0])"
    # The allowed element is forwarded (as a batch); server-everything ignores batches, with or
    # without the proxy, so only the recorder shows it arrived.
    assert "b3" not in by_id
    assert by_id["last"]["result"]["content"][0]["text"] == "Echo: end"
    assert "get-env" not in received and "get-sum" not in received
    assert '[{"jsonrpc":"2.0","id":"b3","method":"tools/call"' in received


LOOK_ALIKE_METHODS = [
    "tool\u017f/call",
    "\ufefftools/call",
    "tools/call\u0000",
    "Tools/List",
    "tools/\u200blist",
]


def test_look_alike_methods_are_answered_with_errors_and_never_reach_the_server(tmp_path: Path) -> None:
    attacks = [
        json.dumps(
            {"jsonrpc": "2.0", "id": f"look-{n}", "method": method, "params": {"name": "get-env"}}
        ).encode()
        for n, method in enumerate(LOOK_ALIKE_METHODS)
    ]
    notifications = [
        json.dumps({"jsonrpc": "2.0", "method": method, "params": {"name": "get-env"}}).encode()
        for method in LOOK_ALIKE_METHODS
    ]
    messages, received = run_raw(tmp_path, INIT + b"\n".join([*attacks, *notifications, ATTACKS[-1]]) + b"\n")
    by_id = {m.get("id"): m for m in messages if isinstance(m, dict)}
    for n in range(len(LOOK_ALIKE_METHODS)):
        assert by_id[f"look-{n}"]["error"]["code"] == -32601
    unanswered = [m for m in messages if isinstance(m, dict) and m.get("id") is None and "error" in m]
    assert [m["error"]["code"] for m in unanswered] == [-32601] * len(LOOK_ALIKE_METHODS)
    assert by_id["last"]["result"]["content"][0]["text"] == "Echo: end"
    assert "look-" not in received and "get-env" not in received


def test_oversized_line_is_answered_and_dropped(tmp_path: Path) -> None:
    huge = (
        b'{"jsonrpc":"2.0","id":"huge","method":"ping","params":{"pad":"'
        + b"A" * (17 * 1024 * 1024)
        + b'"}}\n'
    )
    last = ATTACKS[-1] + b"\n"
    messages, received = run_raw(tmp_path, INIT + huge + last)
    [answer] = [m for m in messages if isinstance(m, dict) and m.get("id") == "huge"]
    assert answer["error"]["code"] == -32600 and "16777216-byte limit" in answer["error"]["message"]
    assert "AAAA" not in received


BIG_ANSWER_SERVER = """
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue
    if message["method"] == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                  "serverInfo": {"name": "big", "version": "1"}}
    else:  # every call answers with 2 MiB of text, id last, as the TypeScript SDK writes it
        result = {"content": [{"type": "text", "text": "B" * (2 * 1024 * 1024)}]}
    sys.stdout.write(json.dumps({"result": result, "jsonrpc": "2.0", "id": message["id"]}) + "\\n")
    sys.stdout.flush()
"""


def test_an_oversized_answer_fails_its_call_which_stays_counted(tmp_path: Path) -> None:
    server = tmp_path / "big_answer_server.py"
    server.write_text(BIG_ANSWER_SERVER)
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools:\n  report:\n    rules:\n      - rate_limit: {max: 1, window: 600}\n")
    command = [
        INTERCEPT,
        "run",
        "-c",
        str(policy),
        "--state",
        "memory",
        "--no-audit",
        "--max-message-bytes",
        str(1024 * 1024),
        "--",
        sys.executable,
        str(server),
    ]
    call = b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"report","arguments":{}}}\n'
    result = subprocess.run(
        command, input=INIT + call % 1 + call % 2, capture_output=True, timeout=60, env=os.environ.copy()
    )
    answers = {m["id"]: m for m in map(json.loads, result.stdout.splitlines())}
    assert answers[1]["error"]["code"] == -32000
    assert "1048576-byte limit" in answers[1]["error"]["message"]
    assert "the tool may have run" in answers[1]["error"]["message"]
    assert DENIED in answers[2]["result"]["content"][0]["text"]  # the first call counted
    assert b"BBBB" not in result.stdout
