"""Who may reach the listener: its address, Host and Origin (DNS rebinding), and the bearer token."""

from __future__ import annotations

import httpx
import pytest

from intercept.transport.http.edge import Edge, ListenAddress, parse_listen
from tests.unit.intercept.transport.http.listener_support import (
    BASE,
    SSE_ACCEPT,
    EchoSessions,
    make_listener,
    rpc,
)


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:8080") == ListenAddress("127.0.0.1", 8080)
    assert parse_listen("[::1]:9000") == ListenAddress("::1", 9000)
    assert parse_listen(":7000") == ListenAddress("127.0.0.1", 7000)
    assert parse_listen("localhost:1").is_loopback
    assert not parse_listen("0.0.0.0:80").is_loopback
    for bad in ("8080", "host:", "host:99999", "host:port"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen(bad)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example:8080"}, 421),
        ({"host": "127.0.0.1:9999"}, 421),
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "http://attacker.127.0.0.1.nip.io:8080"}, 403),
        ({"origin": "http://localhost:3000"}, 200),
        ({"origin": "http://127.0.0.1:8080", "host": "localhost:8080"}, 200),
    ],
)
async def test_host_and_origin_are_validated(
    client: httpx.AsyncClient, sessions: EchoSessions, headers: dict[str, str], status: int
) -> None:
    response = await client.post("/mcp", content=rpc("initialize", 0), headers={**SSE_ACCEPT, **headers})
    assert response.status_code == status
    assert len(sessions.seen) == (1 if status == 200 else 0)


async def test_allowed_hosts_and_origins_extend_the_defaults(sessions: EchoSessions) -> None:
    listener = make_listener(
        sessions, allowed_hosts=("mcp.internal:8080",), allowed_origins=("https://app.example",)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        headers = {**SSE_ACCEPT, "host": "mcp.internal:8080", "origin": "https://app.example"}
        assert (await c.post("/mcp", content=rpc("initialize", 0), headers=headers)).status_code == 200
    await listener.shutdown()


async def test_a_client_token_is_required_when_configured(sessions: EchoSessions) -> None:
    listener = make_listener(sessions, client_token="s3cret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        missing = await c.post("/mcp", content=rpc("initialize", 0), headers=SSE_ACCEPT)
        wrong = await c.post(
            "/mcp", content=rpc("initialize", 0), headers={**SSE_ACCEPT, "authorization": "Bearer x"}
        )
        right = await c.post(
            "/mcp", content=rpc("initialize", 0), headers={**SSE_ACCEPT, "authorization": "Bearer s3cret"}
        )
    await listener.shutdown()
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert len(sessions.seen) == 1


def test_the_edge_alone_answers_by_status_and_lets_the_rest_through() -> None:
    edge = Edge(ListenAddress("127.0.0.1", 8080), client_token="s3cret", allowed_hosts=("mcp.internal:8080",))
    token = {"authorization": "Bearer s3cret"}
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "MCP.internal:8080"):
        assert edge.refuse({"host": host, **token}) is None
    wrong_host = edge.refuse({"host": "127.0.0.1:8081", **token})
    wrong_origin = edge.refuse({"host": "127.0.0.1:8080", "origin": "https://evil.example", **token})
    no_token = edge.refuse({"host": "127.0.0.1:8080"})
    assert wrong_host is not None and wrong_host.status == 421
    assert wrong_origin is not None and wrong_origin.status == 403
    assert no_token is not None and no_token.status == 401 and b"s3cret" not in no_token.body
