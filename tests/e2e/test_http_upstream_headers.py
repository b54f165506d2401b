"""`intercept run --upstream`: nothing a peer says can break out of a request header.

A hostile upstream (a raw HTTP/1.1 server on loopback, keep-alive, written here) echoes the
`protocolVersion` the client asked for in `initialize`. A client that asks for a version with a
CRLF and a second request in it would, if the proxy wrote the negotiated version into the
`MCP-Protocol-Version` header as it is, smuggle that request through the proxy's keep-alive
connection. The server records every request line it parses, so a smuggled one shows.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.http_support import intercept_args

pytestmark = pytest.mark.e2e

SMUGGLED = "GET /smuggled HTTP/1.1\r\nx-smuggled: yes"
EVIL_VERSION = f"2025-06-18\r\ncontent-length: 0\r\n\r\n{SMUGGLED}"


class HostileUpstream(socketserver.ThreadingTCPServer):
    """Keep-alive HTTP/1.1 on 127.0.0.1; `requests` holds (request line, headers) of every request parsed."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, session_id: str = "s1") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.session_id = session_id
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}/mcp"


class _Handler(socketserver.StreamRequestHandler):
    server: HostileUpstream

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            headers: dict[str, str] = {}
            while (field := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
                name, _, value = field.decode("latin-1").partition(":")
                headers.setdefault(name.strip().lower(), value.strip())
            self.server.requests.append((line.decode("latin-1").strip(), headers))
            body = self.rfile.read(int(headers.get("content-length", "0") or 0))
            self.wfile.write(self._answer(body))

    def _answer(self, body: bytes) -> bytes:
        try:
            message = json.loads(body)
        except ValueError:
            return b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"
        if not isinstance(message, dict) or "id" not in message:
            return b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"
        if message.get("method") == "initialize":
            echoed = message["params"]["protocolVersion"]  # what a careless server does
            result: dict[str, Any] = {
                "protocolVersion": echoed,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hostile", "version": "1"},
            }
            extra = f"mcp-session-id: {self.server.session_id}\r\n"
        else:
            result, extra = {"tools": []}, ""
        data = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        head = (
            f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{extra}content-length: {len(data)}\r\n\r\n"
        )
        return head.encode("latin-1") + data


def hostile(session_id: str = "s1") -> Iterator[HostileUpstream]:
    server = HostileUpstream(session_id)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def upstream() -> Iterator[HostileUpstream]:
    yield from hostile()


@pytest.fixture
def spaced_session_upstream() -> Iterator[HostileUpstream]:
    yield from hostile("s 1")  # a space is not visible ASCII: the MCP spec forbids it in a session id


def initialize(version: str) -> dict[str, Any]:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    return {"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": params}


def run_client(tmp_path: Path, url: str, messages: list[dict[str, Any]]) -> tuple[dict[Any, Any], str]:
    """Write `messages` to `intercept run --upstream URL`; its answers by id, and its stderr."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools: {}\n")
    args = intercept_args(policy, "--state", "memory", "--no-audit", "--upstream", url)
    process = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    answers: dict[Any, Any] = {}
    waiting = {m["id"] for m in messages if "id" in m}
    for message in messages:
        process.stdin.write(json.dumps(message).encode() + b"\n")
        process.stdin.flush()
        if "id" in message:
            while message["id"] not in answers:
                line = process.stdout.readline()
                assert line, "intercept run exited before answering"
                answer = json.loads(line)
                answers[answer.get("id")] = answer
    assert waiting <= answers.keys()
    process.stdin.close()
    process.wait(30)
    stderr = process.stderr.read().decode(errors="replace")
    process.stdout.close()
    process.stderr.close()
    return answers, stderr


def test_a_protocol_version_echoed_with_crlf_never_smuggles_a_request(
    upstream: HostileUpstream, tmp_path: Path
) -> None:
    answers, stderr = run_client(
        tmp_path,
        upstream.url,
        [
            initialize(EVIL_VERSION),
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": "list", "method": "tools/list"},
        ],
    )
    lines = [line for line, _ in upstream.requests]
    assert not any("smuggled" in line for line in lines), lines
    assert not any("x-smuggled" in headers for _, headers in upstream.requests)
    assert all("\r" not in v and "\n" not in v for _, h in upstream.requests for v in h.values())
    error = answers["init"]["error"]
    assert "protocolVersion" in error["message"] and "YYYY-MM-DD" in error["message"]
    assert "smuggled" not in error["message"] and "smuggled" not in stderr
    assert "protocolVersion" in stderr  # the refusal is logged, naming the field
    # Nothing learned from the refused answer is sent on.
    assert all("mcp-protocol-version" not in h and "mcp-session-id" not in h for _, h in upstream.requests)


def test_a_session_id_that_is_not_visible_ascii_is_refused(
    spaced_session_upstream: HostileUpstream, tmp_path: Path
) -> None:
    answers, stderr = run_client(
        tmp_path,
        spaced_session_upstream.url,
        [initialize("2025-06-18"), {"jsonrpc": "2.0", "id": "list", "method": "tools/list"}],
    )
    assert "Mcp-Session-Id" in answers["init"]["error"]["message"]
    assert "0x21-0x7E" in answers["init"]["error"]["message"]
    assert "Mcp-Session-Id" in stderr
    assert all("mcp-session-id" not in headers for _, headers in spaced_session_upstream.requests)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("X-Key: s3cret\r\nX-Injected: 1", "control characters"),
        ("X-Key: s3cret\x01", "control characters"),  # argv cannot hold a NUL; unit tests cover it
        ("X-Key: s3cret\x7f", "control characters"),
        ("X Key: s3cret", "HTTP token"),
        ("X-Key\r\n: s3cret", "HTTP token"),
        ("Content-Length: 5", "sets this header itself"),
        ("mcp-protocol-version: 2025-06-18", "sets this header itself"),
        ("no colon s3cret", "Name: value"),
    ],
)
def test_a_header_option_with_line_breaks_or_controls_is_a_usage_error(
    header: str, problem: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools: {}\n")
    args = intercept_args(policy, "--no-audit", "--upstream", "http://127.0.0.1:9/mcp", "--header", header)
    result = subprocess.run(args, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stdout == b""
    stderr = result.stderr.decode()
    assert "--header" in stderr and problem in stderr
    assert "s3cret" not in stderr and "Traceback" not in stderr


def test_the_hostile_upstream_would_see_a_smuggled_request(upstream: HostileUpstream) -> None:
    """The harness itself: a CRLF in a header does reach this server as a second request."""
    host, port = upstream.server_address[:2]
    body = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
    head = f"POST /mcp HTTP/1.1\r\nhost: x\r\nmcp-protocol-version: {EVIL_VERSION}\r\n"
    with socket.create_connection((str(host), int(port))) as sock:
        sock.sendall(head.encode() + b"content-length: %d\r\n\r\n" % len(body) + body)
        sock.settimeout(5)
        received = b""
        while received.count(b"HTTP/1.1") < 2:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    assert [line for line, _ in upstream.requests] == ["POST /mcp HTTP/1.1", "GET /smuggled HTTP/1.1"]
