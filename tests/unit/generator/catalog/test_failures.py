"""Why a package could not be scanned: the reason class, the names it asked for, redaction, the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.catalog.failures import (
    FailureLog,
    classify_failure,
    env_names_asked_for,
    make_failure,
    read_failures,
    redact,
)

STARTUP = "the server failed before listing its tools: Connection closed"


@pytest.mark.parametrize(
    ("message", "tail", "reason"),
    [
        ("the server did not list its tools within 60s (--timeout)", "", "timed-out"),
        (STARTUP, "Error: getaddrinfo ENOTFOUND api.example.com", "needs-network"),
        (STARTUP, "TypeError: fetch failed", "needs-network"),
        ("the server failed before listing its tools: fetch failed", "", "needs-network"),
        (STARTUP, "Error: BRAVE_API_KEY environment variable is required", "needs-credentials"),
        (STARTUP, "Please provide an API key with --api-key", "needs-credentials"),
        (STARTUP, "Usage: thing [OPTIONS] COMMAND [ARGS]...", "not-an-mcp-server"),
        (STARTUP, "SyntaxError: Unexpected token '<'", "not-an-mcp-server"),
        (STARTUP, "Segmentation fault", "crashed"),
        (STARTUP, "", "crashed"),
        (STARTUP, "File 'credentials.py', line 3\n  a()\n  b()\n  c()\nPermissionError: '/x'", "crashed"),
    ],
)
def test_reason_classes(message: str, tail: str, reason: str) -> None:
    assert classify_failure(message, tail) == reason


def test_env_names_come_only_from_lines_that_complain() -> None:
    tail = "\n".join(
        [
            "Starting server, LOG_LEVEL=INFO",
            "Error: GITHUB_PERSONAL_ACCESS_TOKEN environment variable is required",
            "missing required env var ACME_API_KEY and ACME_BASE_URL",
        ]
    )
    assert env_names_asked_for(tail) == ["GITHUB_PERSONAL_ACCESS_TOKEN", "ACME_API_KEY", "ACME_BASE_URL"]


@pytest.mark.parametrize(
    "secret_line",
    [
        "Authorization: Bearer abcdefghijklmnop1234",
        "using api_key=sk-live-0123456789abcdef",
        "token: ghp_0123456789abcdefghijABCDEFGHIJ",
        "connect postgres://admin:hunter2hunter2@db.local/x",
        "key AKIAABCDEFGHIJKLMNOP in use",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghij",
    ],
)
def test_redaction_removes_credential_shaped_text(secret_line: str) -> None:
    cleaned = redact(secret_line)
    assert "[redacted]" in cleaned
    for secret in ("abcdefghijklmnop1234", "0123456789abcdef", "hunter2", "AKIAABCDEFGHIJKLMNOP", "eyJzdWIi"):
        assert secret not in cleaned


@pytest.mark.parametrize(
    "line",
    [
        "Error: Cannot find module '/x/dist/index.js'",
        "  at /tmp/intercept-intake-abc/prefix/node_modules/@scope/some-long-package-name-here/dist/x.js",
    ],
)
def test_redaction_keeps_ordinary_error_text(line: str) -> None:
    assert redact(line) == line


def test_failure_keeps_the_message_and_the_last_lines_redacted() -> None:
    tail = "\n".join(f"line {n}" for n in range(30)) + "\npassword=topsecretvalue"
    failure = make_failure("npm", "pkg", "1.0.0", "crashed", "the server failed", tail)
    assert failure.error[0] == "the server failed"
    assert failure.error[-1] == "password=[redacted]"
    assert len(failure.error) == 8
    assert "line 29" in failure.error


def test_log_keeps_one_record_per_package_with_counts(tmp_path: Path) -> None:
    path = tmp_path / "_failures.json"
    log = FailureLog(path)
    log.record(make_failure("npm", "a", "1", "crashed", "x", ""))
    log.record(make_failure("npm", "a", "2", "timed-out", "y", ""))
    log.record(make_failure("pypi", "b", None, "install-failed", "z", ""))
    data = json.loads(path.read_text())
    assert data["counts"]["timed-out"] == 1 and data["counts"]["crashed"] == 0
    assert [(f.package, f.reason) for f in read_failures(path)] == [
        ("a", "timed-out"),
        ("b", "install-failed"),
    ]
    FailureLog(path).clear("npm", "a")
    assert [f.package for f in read_failures(path)] == ["b"]
