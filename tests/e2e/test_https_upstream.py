"""`intercept run --upstream https://...`: certificates are verified, against the system's trust store.

A real Streamable HTTP server (the MCP SDK's, under uvicorn) serves HTTPS with a certificate
from a throwaway certificate authority (trustme). The proxy trusts it only when the CA is in
the trust store it is given (`SSL_CERT_FILE`, which OpenSSL reads), as an internal CA would be.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mcp.types as types
import pytest
import trustme
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conftest import free_port
from tests.e2e.http_support import intercept_args, wait_for_port

pytestmark = pytest.mark.e2e

TOKEN = "tls-s3cret"
POLICY = "tools:\n  delete_widget:\n    rules:\n      - action: deny\n        reason: widgets stay\n"


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_server(authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "server.pem", folder / "server.key"
    issued = authority.issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    port = free_port()
    log = folder / "server.log"
    script = str(Path(__file__).with_name("http_mcp_server.py"))
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, script, str(port), TOKEN, str(cert), str(key)], stdout=sink, stderr=sink
        )
    try:
        wait_for_port(port, process, log)
        yield f"https://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def params(tmp_path: Path, url: str, trust_store: Path | None) -> StdioServerParameters:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    auth = f"Authorization: Bearer {TOKEN}"
    args = intercept_args(policy, "--state", "memory", "--no-audit", "--upstream", url, "--header", auth)
    env = dict(os.environ)
    env.pop("SSL_CERT_DIR", None)
    if trust_store is not None:
        env["SSL_CERT_FILE"] = str(trust_store)
    return StdioServerParameters(command=args[0], args=args[1:], env=env)


async def test_a_trusted_https_upstream_is_proxied_with_the_policy_applied(
    authority: trustme.CA, https_server: str, tmp_path: Path
) -> None:
    trust_store = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(trust_store))
    async with (
        stdio_client(params(tmp_path, https_server, trust_store)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await asyncio.wait_for(session.initialize(), 30)
        listed = await session.call_tool("list_widgets", {"prefix": "a"})
        assert not listed.is_error
        assert [c.text for c in listed.content if isinstance(c, types.TextContent)] == ["alpha"]
        denied = await session.call_tool("delete_widget", {"widget_id": "w1"})
        assert denied.is_error
        assert "widgets stay" in "".join(c.text for c in denied.content if isinstance(c, types.TextContent))


async def test_an_https_upstream_whose_certificate_is_not_trusted_is_refused(
    https_server: str, tmp_path: Path
) -> None:
    system_store = Path("/etc/ssl/certs/ca-certificates.crt")
    trust_store = system_store if system_store.exists() else tmp_path / "empty.pem"
    if not trust_store.exists():
        trust_store.write_text("")
    async with (
        stdio_client(params(tmp_path, https_server, trust_store)) as (read, write),
        ClientSession(read, write) as session,
    ):
        with pytest.raises(Exception) as refused:
            await asyncio.wait_for(session.initialize(), 30)
        assert "TLS certificate is not trusted" in str(refused.value)
        assert "SSL_CERT_FILE" in str(refused.value)
