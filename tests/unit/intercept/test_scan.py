"""The scanner against a tiny scripted server: paging, broken cursors, crashes, hangs and environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from intercept.scan import HttpTarget, ScanError, StdioTarget, scan

FAKE = str(Path(__file__).with_name("fake_mcp_server.py"))


def fake(mode: str, **env: str) -> StdioTarget:
    return StdioTarget([sys.executable, FAKE, mode], env)


def test_scan_follows_the_cursor_through_every_page() -> None:
    result = scan(fake("paged"), timeout=20)
    assert [t.name for t in result.tools] == ["alpha", "beta", "gamma", "delete_everything"]
    assert (result.server_name, result.server_version) == ("fake-server", "9.9.9")
    assert result.protocol_version
    assert result.command == [sys.executable, FAKE, "paged"]
    assert result.tools[0].input_schema["properties"] == {"id": {"type": "string"}}


def test_a_cursor_that_repeats_is_an_error_not_an_endless_loop() -> None:
    with pytest.raises(ScanError, match="a cursor it had already returned"):
        scan(fake("loop"), timeout=20)


def test_a_server_that_dies_shows_the_tail_of_its_stderr() -> None:
    with pytest.raises(ScanError) as caught:
        scan(fake("crash"), timeout=20)
    assert "fatal: FAKE_TOKEN is not set" in caught.value.stderr_tail
    assert "fatal: FAKE_TOKEN is not set" in caught.value.render()


def test_a_server_that_never_answers_hits_the_timeout() -> None:
    with pytest.raises(ScanError, match=r"within 1s \(--timeout\)"):
        scan(fake("hang"), timeout=1)


def test_a_missing_program_is_named() -> None:
    with pytest.raises(ScanError, match="'no-such-mcp-server-xyz' is not on PATH"):
        scan(StdioTarget(["no-such-mcp-server-xyz"]), timeout=5)


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(ScanError, match="no server command"):
        scan(StdioTarget([]), timeout=5)


def test_extra_environment_reaches_the_server() -> None:
    result = scan(fake("env", FAKE_SCAN_VALUE="dummy-123"), timeout=20)
    assert result.tools[0].description == "dummy-123"


def test_an_upstream_that_is_not_http_is_refused() -> None:
    with pytest.raises(ScanError, match="not an http"):
        scan(HttpTarget("ftp://127.0.0.1/mcp"), timeout=5)


def test_an_upstream_that_refuses_connections_fails_cleanly() -> None:
    with pytest.raises(ScanError, match=r"cannot scan http://127\.0\.0\.1:9/mcp"):
        scan(HttpTarget("http://127.0.0.1:9/mcp"), timeout=10)


def test_server_stderr_is_shown_without_terminal_escapes() -> None:
    error = ScanError("failed \x1b[2J", "line one\nsecret \x1b]52;c;ZXZpbA==\x07 done")
    text = error.render()
    assert "\x1b" not in text and "\x07" not in text
    assert "\\u001b]52" in text and "line one" in text
