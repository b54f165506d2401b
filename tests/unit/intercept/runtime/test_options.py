"""The HTTP transport options of `intercept run`: checked together, errors name the conflict and its fix."""

from __future__ import annotations

from typing import Any

import pytest

from intercept.runtime.options import HttpSides
from intercept.transport.http.limits import ListenerLimits

BASE: dict[str, Any] = {
    "upstream": None,
    "headers": (),
    "listen": None,
    "client_token": None,
    "allowed_hosts": (),
    "allowed_origins": (),
}


def sides(has_command: bool = False, **options: Any) -> HttpSides:
    return HttpSides.from_cli(has_command=has_command, **{**BASE, **options})


def test_valid_combinations() -> None:
    bridged = sides(upstream="https://mcp.example/mcp", headers=("Authorization: Bearer t",))
    assert bridged.headers == (("Authorization", "Bearer t"),) and bridged.active
    assert sides(has_command=True, listen="127.0.0.1:8080", client_token="t").listen == "127.0.0.1:8080"
    assert not sides(has_command=True).active


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "server command"),
        ({"has_command": True, "upstream": "https://x/mcp"}, "not both"),
        ({"upstream": "ftp://user:secret@x/"}, "http:// or https://"),
        ({"has_command": True, "headers": ("A: b",)}, "--header applies"),
        ({"has_command": True, "client_token": "t"}, "need --listen"),
        ({"has_command": True, "allowed_origins": ("https://a",)}, "need --listen"),
        ({"has_command": True, "listen": "8080"}, "HOST:PORT"),
        ({"upstream": "https://x/mcp", "headers": ("no colon",)}, "Name: value"),
        (
            {"has_command": True, "max_sessions": 3, "body_timeout": 1.0},
            "--max-sessions, --body-timeout need",
        ),
        (
            {"has_command": True, "listen": ":1", "max_buffered_bytes": 2048, "max_message_bytes": 4096},
            "--max-buffered-bytes 2048 is less than --max-message-bytes 4096",
        ),
    ],
)
def test_conflicts_are_refused_with_a_reason(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        sides(**options)
    assert "secret" not in str(info.value)


def test_listener_limits_have_defaults_and_options_set_them() -> None:
    listen: dict[str, Any] = {"has_command": True, "listen": "127.0.0.1:8080"}
    assert sides(**listen).limits == ListenerLimits()
    chosen = sides(
        **listen,
        max_sessions=4,
        session_idle_timeout=5.0,
        header_timeout=1.0,
        body_timeout=2.0,
        max_connections=9,
        max_buffered_bytes=1 << 30,
    )
    assert chosen.limits == ListenerLimits(4, 5.0, 1.0, 2.0, 9, 1 << 30)
    # Without --max-buffered-bytes, the budget holds four messages of the largest size.
    assert sides(**listen, max_message_bytes=100 << 20).limits.max_buffered_bytes == 400 << 20
