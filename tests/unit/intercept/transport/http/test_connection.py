"""The httptools keep-alive client the upstream POSTs use, against scripted servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from intercept.transport.http.connection import ConnectionPool, HeaderInjection

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ScriptedServer:
    """Runs `script` for every connection; counts connections and the requests read."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body

    async def url(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/mcp"


@pytest.fixture
async def servers() -> AsyncIterator[list[ScriptedServer]]:
    started: list[ScriptedServer] = []
    yield started
    for server in started:
        if server.server is not None:
            server.server.close()


async def start(
    servers: list[ScriptedServer], script: Callable[[ScriptedServer], Script]
) -> tuple[ScriptedServer, str]:
    server = ScriptedServer(lambda r, w: script(server)(r, w))
    servers.append(server)
    return server, await server.url()


def answering(reply: bytes) -> Callable[[ScriptedServer], Script]:
    """A script that reads one request, writes `reply` and leaves the connection to close."""

    def script(server: ScriptedServer) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(reply)
            await writer.drain()

        return run

    return script


async def test_length_delimited_answers_reuse_one_connection(servers: list[ScriptedServer]) -> None:
    def script(server: ScriptedServer) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                body = await server.read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Two: a\r\n")
                writer.write(b"content-length: %d\r\n\r\n%s" % (len(body), body))

        return run

    server, url = await start(servers, script)
    pool = ConnectionPool(url)
    for n in range(3):
        response = await pool.request("POST", [("content-type", "application/json")], b'{"n":%d}' % n)
        assert response.status == 200 and response.headers["content-type"] == "application/json"
        assert await response.read(1000) == b'{"n":%d}' % n
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:")
    pool.close()


async def test_a_chunked_stream_arrives_piece_by_piece(servers: list[ScriptedServer]) -> None:
    release = asyncio.Event()

    def script(server: ScriptedServer) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            writer.write(b"6\r\nfirst\n\r\n")
            await writer.drain()
            await release.wait()
            writer.write(b"7\r\nsecond\n\r\n0\r\n\r\n")
            await writer.drain()
            await reader.read()

        return run

    _, url = await start(servers, script)
    pool = ConnectionPool(url)
    response = await pool.request("POST", [], b"{}")
    chunks = response.chunks()
    assert await anext(chunks) == b"first\n"
    release.set()
    assert [chunk async for chunk in chunks] == [b"second\n"]
    pool.close()


async def test_a_body_ended_by_close_and_a_server_that_asks_to_close(servers: list[ScriptedServer]) -> None:
    server, url = await start(
        servers, answering(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end")
    )
    pool = ConnectionPool(url)
    for _ in range(2):
        response = await pool.request("POST", [], b"{}")
        assert await response.read(1000) == b"until the end"
    assert server.connections == 2  # not reused after `connection: close`
    pool.close()


async def test_an_idle_connection_the_server_closed_is_replaced_and_the_request_resent(
    servers: list[ScriptedServer],
) -> None:
    # Keep-alive is promised, but the connection is closed after the answer.
    server, url = await start(servers, answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
    pool = ConnectionPool(url)
    assert await (await pool.request("POST", [], b"1")).read(10) == b"ok"
    await asyncio.sleep(0.05)
    assert await (await pool.request("POST", [], b"2")).read(10) == b"ok"
    assert server.connections == 2 and len(server.requests) == 2
    pool.close()


@pytest.mark.parametrize(
    "reply",
    [b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", b"not http at all\r\n\r\n"],
)
async def test_a_broken_answer_raises_connection_error(servers: list[ScriptedServer], reply: bytes) -> None:
    _, url = await start(servers, answering(reply))
    pool = ConnectionPool(url)
    with pytest.raises(ConnectionError):
        response = await pool.request("POST", [], b"{}")
        await response.read(100)
    pool.close()


async def test_an_oversized_body_is_refused_and_a_refused_connection_raises(
    servers: list[ScriptedServer],
) -> None:
    _, url = await start(servers, answering(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000))
    pool = ConnectionPool(url)
    assert await (await pool.request("POST", [], b"{}")).read(1000) is None
    pool.close()
    from tests.conftest import free_port

    with pytest.raises(OSError):
        await ConnectionPool(f"http://127.0.0.1:{free_port()}/mcp").request("POST", [], b"{}")


async def test_an_informational_response_is_skipped_and_a_truncated_body_is_an_error(
    servers: list[ScriptedServer],
) -> None:
    _, url = await start(
        servers,
        answering(
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        ),
    )
    pool = ConnectionPool(url)
    response = await pool.request("POST", [], b"{}")
    assert response.status == 200 and "link" not in response.headers
    assert await response.read(10) == b"ok"
    pool.close()
    _, url = await start(
        servers, answering(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 10\r\n\r\nshort")
    )
    pool = ConnectionPool(url)
    with pytest.raises(ConnectionError):
        await (await pool.request("POST", [], b"{}")).read(100)
    pool.close()


async def test_a_large_answer_that_paused_reading_leaves_the_connection_reusable(
    servers: list[ScriptedServer],
) -> None:
    big = b"x" * (1024 * 1024)

    def script(server: ScriptedServer) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(big), big))
                await writer.drain()

        return run

    server, url = await start(servers, script)
    pool = ConnectionPool(url)
    for _ in range(3):
        response = await pool.request("POST", [], b"{}")
        await asyncio.sleep(0.05)  # let the whole answer arrive before it is read
        assert await asyncio.wait_for(response.read(len(big)), 5) == big
    assert server.connections == 1
    pool.close()


async def test_https_verifies_the_servers_certificate(servers: list[ScriptedServer], tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *(
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
            ),
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    served: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.append(await reader.read(100))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await ConnectionPool(f"https://127.0.0.1:{port}/mcp").request("POST", [], b"secret")
    finally:
        server.close()
    assert b"secret" not in b"".join(served)


@pytest.mark.parametrize(
    "header",
    [
        ("x-version", "2025-06-18\r\ncontent-length: 0\r\n\r\nGET /smuggled HTTP/1.1"),
        ("x-version", "a\rb"),
        ("x-version", "a\nb"),
        ("x-version", "a\x00b"),
        ("x-bad\r\nname", "v"),
        ("x-version", "\u2028\u65e5"),  # not Latin-1: cannot be written at all
    ],
)
async def test_a_header_that_would_break_the_request_head_is_never_written(
    servers: list[ScriptedServer], header: tuple[str, str]
) -> None:
    server, url = await start(servers, answering(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"))
    pool = ConnectionPool(url)
    with pytest.raises(HeaderInjection):
        await pool.request("POST", [("content-type", "application/json"), header], b"{}")
    assert server.requests == []
    pool.close()
