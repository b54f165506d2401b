"""Processes for the HTTP e2e tests: server-everything over Streamable HTTP, and `intercept run` proxies."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port as free_port  # the HTTP tests take it from here

EVERYTHING = "@modelcontextprotocol/server-everything"
SSE_ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout}s: {log.read_text()[-2000:]}")


class Service:
    """A background process listening on a port; `url` is its MCP endpoint."""

    def __init__(self, args: Sequence[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.log = Path(tempfile.mkstemp(prefix="intercept-e2e-", suffix=".log")[1])
        with self.log.open("wb") as sink:
            # Its own process group: `npx` runs the server as a child that must be stopped with it.
            self.process = subprocess.Popen(
                list(args),
                stdout=sink,
                stderr=sink,
                stdin=subprocess.DEVNULL,
                env=env or dict(os.environ),
                start_new_session=True,
            )
        wait_for_port(port, self.process, self.log)

    def stop(self) -> None:
        """Stop the process and everything it started (its process group)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        # The group may outlive its leader by a moment (npx's node child); make sure it is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.unlink(missing_ok=True)


def npx() -> str:
    found = shutil.which("npx")
    if found is None:
        raise RuntimeError("npx is not installed; the HTTP e2e tests need Node.js and npm")
    return found


def everything_http(node: str | None = None) -> Service:
    """server-everything in streamableHttp mode on a free port (it reads PORT from the environment)."""
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    if node is not None:
        script = Path(node).parent.parent.parent / EVERYTHING / "dist" / "index.js"
        return Service([node, str(script), "streamableHttp"], port, env)
    return Service([npx(), "-y", EVERYTHING, "streamableHttp"], port, env)


def intercept_args(policy: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "intercept", "run", "-c", str(policy), "--no-watch", *args]


def proxy(policy: Path, *args: str) -> Service:
    """`intercept run --listen` on a free port with the given extra arguments (upstream, state...)."""
    port = free_port()
    return Service(intercept_args(policy, "--listen", f"127.0.0.1:{port}", *args), port)


def sse_messages(text: str) -> list[Any]:
    return [json.loads(line[5:].strip()) for line in text.splitlines() if line.startswith("data:")]


def rpc(method: str, request_id: Any = None, **params: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params:
        message["params"] = params
    return message


MODERN = "2026-07-28"
MODERN_META = {
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "intercept-e2e", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
}
"""The 2026-07-28 per-request envelope, as `rpc(..., **MODERN_META)` params."""

INITIALIZE_PARAMS = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "intercept-e2e", "version": "1"},
}


async def raw_session(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> str:
    """Initialize a session with plain HTTP (for load tests and header checks); returns its id."""
    extra = headers or {}
    response = await client.post(
        url, json=rpc("initialize", 0, **INITIALIZE_PARAMS), headers={**SSE_ACCEPT, **extra}
    )
    response.raise_for_status()
    sid = response.headers["mcp-session-id"]
    note = await client.post(
        url, json=rpc("notifications/initialized"), headers={**SSE_ACCEPT, **extra, "mcp-session-id": sid}
    )
    assert note.status_code == 202
    return sid


async def raw_call(
    client: httpx.AsyncClient, url: str, sid: str, request_id: int, tool: str, **args: Any
) -> Any:
    """One tools/call over plain HTTP; returns the JSON-RPC response."""
    body = rpc("tools/call", request_id, name=tool, arguments=args)
    response = await client.post(url, json=body, headers={**SSE_ACCEPT, "mcp-session-id": sid})
    response.raise_for_status()
    if response.headers["content-type"].startswith("application/json"):
        return response.json()
    return next(m for m in sse_messages(response.text) if m.get("id") == request_id)
