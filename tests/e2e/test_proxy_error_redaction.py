"""Refusals say where and what kind of problem, never what the message held.

Each rejected message below carries a distinctive secret exactly where it is rejected (an
out-of-range number, a bad escape, a duplicate key, a control character, a look-alike method's
arguments, malformed params, a header). A real `intercept run`, logging at debug level to stderr
and writing its audit log, must not repeat any of them: not on stderr, not in the audit log,
not in the error answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.http_support import SSE_ACCEPT, Service, intercept_args, proxy
from tests.e2e.proxy_helpers import EVERYTHING, proxied

pytestmark = pytest.mark.e2e

INIT = (
    b'{"jsonrpc":"2.0","id":"i","method":"initialize","params":{"protocolVersion":"2025-06-18",'
    b'"capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}\n'
    b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
)


def call(request_id: str, arguments: str, method: str = "tools/call", name: str = "echo") -> bytes:
    return (
        f'{{"jsonrpc":"2.0","id":"{request_id}","method":"{method}",'
        f'"params":{{"name":"{name}","arguments":{arguments}}}}}'
    ).encode()


REJECTED: dict[str, bytes] = {
    # secret -> a message carrying it where the proxy rejects the message
    "73317331733173317331": call("huge", '{"amount":73317331733173317331e999999}'),
    "9182736455463728190": call("huge-negative", '{"amount":-9182736455463728190e400}'),
    "EscapeSecretQX": call("escape", '{"token":"\\qEscapeSecretQX"}'),
    "UnicodeEscSecretZZ": call("uescape", '{"token":"\\uZZZZUnicodeEscSecretZZ"}'),
    "DupKeySecretKK": call("dup", '{"DupKeySecretKK":1,"DupKeySecretKK":2}'),
    "CtrlCharSecretCC": call("ctrl", '{"token":"CtrlCharSecretCC\x01"}'),
    "LookAlikeSecretLA": call("look", '{"token":"LookAlikeSecretLA"}', method="tool\\u017f/call"),
    "LookAlikeListSecretLL": b'{"jsonrpc":"2.0","id":"look-list","method":"Tools/List",'
    b'"params":{"cursor":"LookAlikeListSecretLL"}}',
    "BadArgsSecretBA": call("args", '"BadArgsSecretBA"'),
    "BadNameSecretBN": b'{"jsonrpc":"2.0","id":"name","method":"tools/call",'
    b'"params":{"name":["BadNameSecretBN"]}}',
    "BadParamsSecretBP": b'{"jsonrpc":"2.0","id":"params","method":"tools/call",'
    b'"params":["BadParamsSecretBP"]}',
    "NoIdSecretNI": b'{"jsonrpc":"2.0","method":"tools/call",'
    b'"params":{"name":"echo","arguments":{"t":"NoIdSecretNI"}}}',
    "BadJsonSecretBJ": b'{"jsonrpc":"2.0","id":"json","method":"ping","params":{"t":BadJsonSecretBJ}}',
    "TrailingSecretTS": b'{"jsonrpc":"2.0","id":"trail","method":"ping"} TrailingSecretTS',
    "Utf8SecretUS": b'{"jsonrpc":"2.0","id":"utf8","method":"ping","params":{"t":"Utf8SecretUS\xff"}}',
    "SurrogateSecretSS": call("surrogate", '{"t":"SurrogateSecretSS\\ud800"}'),
    "NaNSecretNN": b'{"jsonrpc":"2.0","id":"nan","method":"ping","params":{"NaNSecretNN":NaN}}',
    "IdSecretID": b'{"jsonrpc":"2.0","id":{"IdSecretID":1},"method":"ping"}',
    "12345678901234567890": call("bigint", '{"n":' + "1234567890" * 500 + "}"),
}
LAST = call("last", '{"message":"end"}')


DEBUG = ("--log-level", "debug")
"""Every log line the proxy can write, so none that would leak is missed."""


def leaks(secret: str, *texts: str) -> bool:
    return any(secret in text for text in texts)


def test_no_rejection_repeats_the_rejected_content(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools:\n  echo:\n    rules:\n      - validate: {schema: true}\n")
    params = proxied(policy, EVERYTHING, tmp_path, *DEBUG)
    audit = tmp_path / "audit.jsonl"  # where `proxied` puts it
    process = subprocess.Popen(
        [params.command, *params.args],
        env=params.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(INIT + b"\n".join(REJECTED.values()) + b"\n" + LAST + b"\n")
    process.stdin.flush()
    answers: list[Any] = []
    for line in process.stdout:
        answers.append(json.loads(line))
        if answers[-1].get("id") == "last":
            break
    process.stdin.close()
    assert process.stderr is not None
    stderr_bytes = process.stderr.read()
    process.stdout.read()
    process.wait(30)
    process.stdout.close()
    process.stderr.close()
    stdout = json.dumps(answers)
    stderr = stderr_bytes.decode(errors="replace")
    logged = audit.read_text()
    errors = [a for a in answers if "error" in a]
    assert len(errors) == len(REJECTED), errors  # every rejected message was answered with an error
    assert stderr.count("client message rejected") == len(REJECTED)
    for secret in REJECTED:
        assert not leaks(secret, stdout, stderr, logged), secret
    assert "\u017f" not in stderr and "Tools/List" not in stderr  # nor the look-alike methods
    # Each still says what kind of problem it was (parse errors carry no id: it could not be read).
    messages = "\n".join(e["error"]["message"] for e in errors)
    for kind in (
        "number out of range",
        "Invalid \\escape at line 1 column",
        "duplicate key",
        "Invalid control character at line 1 column",
        "method must be exactly 'tools/call'",
        "method must be exactly 'tools/list'",
        "arguments must be an object",
        "number with too many digits",
        "not valid UTF-8",
        "lone surrogate",
    ):
        assert kind in messages, kind
    assert answers[-1]["result"]["content"][0]["text"] == "Echo: end"


@pytest.fixture
def listener(tmp_path: Path) -> Any:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools: {}\n")
    audit = tmp_path / "audit.jsonl"
    service: Service = proxy(
        policy,
        "--state",
        "memory",
        "--audit-log",
        str(audit),
        *DEBUG,
        "--",
        sys.executable,
        "-c",
        "import sys; sys.stdin.read()",
    )
    try:
        yield service, audit
    finally:
        service.stop()


def test_listener_refusals_do_not_repeat_headers_or_bodies(listener: Any, tmp_path: Path) -> None:
    service, audit = listener
    body = call("1", '{"x":1}')
    sent: list[tuple[dict[str, str], bytes]] = [
        ({"mcp-method": "tools/call", "mcp-name": "HeaderNameSecretHN"}, body),
        ({"mcp-method": "HeaderMethodSecretHM"}, body),
        ({"mcp-protocol-version": "2025-06-18 VersionSecretVS"}, body),
        (
            {},
            b'{"jsonrpc":"2.0","id":"1","method":"ping","params":{"_meta":'
            b'{"io.modelcontextprotocol/protocolVersion":"MetaVersionSecretMV"}}}',
        ),
        ({"host": "HostSecretHS.example:80"}, body),
        ({}, call("2", '{"amount":55665566556655665566e99999}')),
        ({}, call("3", '{"DupKeySecretLK":1,"DupKeySecretLK":2}')),
        ({}, call("4", '{"t":"\\qEscapeSecretLE"}')),
    ]
    secrets = [
        "HeaderNameSecretHN",
        "HeaderMethodSecretHM",
        "VersionSecretVS",
        "MetaVersionSecretMV",
        "HostSecretHS",
        "55665566556655665566",
        "DupKeySecretLK",
        "EscapeSecretLE",
    ]
    answers: list[str] = []
    with httpx.Client() as client:
        for headers, content in sent:
            response = client.post(service.url, content=content, headers={**SSE_ACCEPT, **headers})
            assert response.status_code in (400, 421), response.text
            answers.append(response.text)
    log = service.log.read_text(errors="replace")
    logged = audit.read_text() if audit.exists() else ""
    for secret in secrets:
        assert not leaks(secret, *answers, log, logged), secret


def test_a_header_option_error_does_not_repeat_the_value(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools: {}\n")
    args = intercept_args(policy, "--upstream", "http://127.0.0.1:9/mcp", "--header", "X-Key: OptSecret\x01")
    result = subprocess.run(args, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and b"--header X-Key" in result.stderr
    assert b"OptSecret" not in result.stderr
