"""What a call costs when it does not end normally, through real `intercept run` processes.

Once the proxy has forwarded a call, only a result the server itself marks `isError` gives its
quota back (docs/POLICY.md). Here a client leaves calls in flight every way it can (hanging up
over stdio, deleting its HTTP session, dropping its connection, cancelling) in front of real
servers: the official Python SDK 2.x and 1.x (tests/e2e/counting_server.py, whose slow tool
records every run) and server-everything. A tool limited to two calls must never run a third
time. Also: every `tools/list` answer the client receives is filtered, whatever happened to its
request (cancelled at once, in its own batch, or sent under a cancelled call's id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.http_support import (
    INITIALIZE_PARAMS,
    SSE_ACCEPT,
    Service,
    free_port,
    proxy,
    raw_session,
    rpc,
    sse_messages,
)
from tests.e2e.proxy_helpers import DENIED, EVERYTHING, INTERCEPT, child_env, session, text_of

pytestmark = pytest.mark.e2e

COUNTING = str(Path(__file__).with_name("counting_server.py"))
SPLITTER = str(Path(__file__).with_name("batch_splitter.py"))
MCP1_VERSION = "1.12.4"
LIMIT = 2
POLICY = """\
hide: [secret, get-env]
tools:
  slow:
    rules:
      - name: two slow calls
        rate_limit: {max: 2, window: 3600}
  trigger-long-running-operation:
    rules:
      - name: two long operations
        rate_limit: {max: 2, window: 3600}
"""
WAIT_SECONDS = 60.0
"""How long a test waits for something that normally takes well under a second, before failing."""


@pytest.fixture(scope="session")
def mcp1_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python with the 1.x SDK, in a venv of its own (kept in pytest's cache between runs)."""
    cache = request.config.cache
    venv = cache.mkdir("mcp1-venv") if cache is not None else tmp_path_factory.mktemp("mcp1-venv")
    python = venv / "bin" / "python"
    probe = f"import importlib.metadata as m, mcp.server.fastmcp; assert m.version('mcp') == '{MCP1_VERSION}'"
    if python.exists() and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
        return str(python)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    # mcp 1.12 imports a pydantic internal that pydantic 2.12 removed.
    install = [str(python), "-m", "pip", "install", "--quiet", f"mcp=={MCP1_VERSION}", "pydantic<2.12"]
    subprocess.run(install, check=True)
    subprocess.run([python, "-c", probe], check=True)
    return str(python)


@dataclass
class Server:
    """An MCP server command, its slow limited tool, and (for the counting servers) its run record."""

    command: list[str]
    tool: str
    arguments: dict[str, Any]
    quick_arguments: dict[str, Any]
    runs: Path | None = None

    def runs_started(self) -> int:
        assert self.runs is not None
        return self.runs.read_text().count("run\n") if self.runs.exists() else 0

    async def wait_for_run(self, number: int) -> None:
        """Until the tool has started its `number`th run."""
        with anyio.fail_after(WAIT_SECONDS):
            while self.runs_started() < number:
                await anyio.sleep(0.02)


def counting_server(python: str, tmp_path: Path, transport: str = "stdio") -> Server:
    runs = tmp_path / "runs.txt"
    return Server([python, COUNTING, str(runs), transport], "slow", {"seconds": 60}, {"seconds": 0}, runs)


def make_server(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Server:
    if kind == "sdk2":
        return counting_server(sys.executable, tmp_path)
    if kind == "sdk1":
        return counting_server(request.getfixturevalue("mcp1_python"), tmp_path)
    assert kind == "everything"
    return Server(
        list(EVERYTHING),
        "trigger-long-running-operation",
        {"duration": 60, "steps": 60},
        {"duration": 0.1, "steps": 1},
    )


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def run_args(policy: Path, *options: str) -> list[str]:
    return ["run", "-c", str(policy), "--no-watch", "--no-audit", *options]


def call_request(server: Server, request_id: Any) -> dict[str, Any]:
    params = {
        "name": server.tool,
        "arguments": server.arguments,
        "_meta": {"progressToken": f"p-{request_id}"},
    }
    return rpc("tools/call", request_id, **params)


def assert_denied_by_the_limit(result: Any) -> None:
    text = text_of(result)
    assert result.is_error and text.startswith(DENIED), text
    assert f"rate limit of {LIMIT} calls per 3600 s reached" in text


class RawClient:
    """`intercept run` driven over its stdin and stdout by hand, so a test can hang up at will."""

    def __init__(self, args: list[str], home: Path) -> None:
        with (home / "intercept.log").open("ab") as log:
            self.process = subprocess.Popen(
                [INTERCEPT, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=child_env(home),
            )
        self._lines: queue.Queue[Any] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def send(self, *messages: Any) -> None:
        """Write the messages in one go, so the proxy reads them together."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
        self.process.stdin.flush()

    def until(self, done: Callable[[Any], bool]) -> list[Any]:
        """Messages received up to and including the first for which `done` is true."""
        seen: list[Any] = []
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                message = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no expected message within {WAIT_SECONDS} s; got {seen}") from None
            if message is None:
                raise AssertionError(f"the proxy closed its output first; got {seen}")
            seen.append(message)
            if done(message):
                return seen

    def initialize(self) -> None:
        self.send(rpc("initialize", "init", **INITIALIZE_PARAMS))
        self.until(lambda m: m.get("id") == "init")
        self.send(rpc("notifications/initialized"))

    def hang_up(self) -> list[Any]:
        """Close the proxy's input; what it still wrote before exiting."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        rest: list[Any] = []
        while (message := self._lines.get(timeout=WAIT_SECONDS)) is not None:
            rest.append(message)
        self.process.wait(WAIT_SECONDS)
        return rest

    def close(self) -> None:
        """Kill the proxy if it still runs, and release its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        assert self.process.stdin is not None and self.process.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        self._reader.join(WAIT_SECONDS)
        self.process.stdout.close()


@contextlib.contextmanager
def raw_client(args: list[str], home: Path) -> Iterator[RawClient]:
    client = RawClient(args, home)
    try:
        yield client
    finally:
        client.close()


async def wait_until_running(server: Server, client: RawClient, request_id: Any, number: int) -> None:
    """Until the call `request_id` runs on the server (its `number`th run)."""
    if server.runs is not None:
        await server.wait_for_run(number)
        return
    token = f"p-{request_id}"
    client.until(
        lambda m: m.get("method") == "notifications/progress" and m["params"]["progressToken"] == token
    )


def is_progress(message: Any) -> bool:
    return isinstance(message, dict) and message.get("method") == "notifications/progress"


# -- hanging up ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sdk2", "sdk1", "everything"])
async def test_a_client_that_hangs_up_mid_call_leaves_the_call_counted(
    kind: str, policy: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The Python SDK 2.x answers a call in flight with `-32000 Connection closed` when its input
    closes; the 1.x SDK and server-everything do not exit and are stopped by the proxy."""
    server = make_server(kind, tmp_path, request)
    args = run_args(
        policy, "--state", "sqlite", "--state-dir", str(tmp_path / "state"), "--", *server.command
    )
    for attempt in range(1, LIMIT + 1):
        with raw_client(args, tmp_path) as client:
            client.initialize()
            client.send(call_request(server, attempt))
            await wait_until_running(server, client, attempt, attempt)
            answers = [m for m in client.hang_up() if not is_progress(m) and m.get("id") == attempt]
            assert all("error" in m for m in answers), answers
    params = StdioServerParameters(command=INTERCEPT, args=args, env=child_env(tmp_path))
    async with session(params) as client_session:
        assert_denied_by_the_limit(await client_session.call_tool(server.tool, server.quick_arguments))
    if server.runs is not None:
        assert server.runs_started() == LIMIT


@pytest.fixture
def sdk2_http(tmp_path: Path) -> Iterator[tuple[Server, Service]]:
    """The counting server (SDK 2.x) on Streamable HTTP."""
    port = free_port()
    server = counting_server(sys.executable, tmp_path, str(port))
    service = Service(server.command, port)
    yield server, service
    service.stop()


async def test_a_stdio_client_that_hangs_up_in_front_of_an_upstream_leaves_the_call_counted(
    policy: Path, tmp_path: Path, sdk2_http: tuple[Server, Service]
) -> None:
    server, upstream = sdk2_http
    args = run_args(
        policy, "--state", "sqlite", "--state-dir", str(tmp_path / "state"), "--upstream", upstream.url
    )
    for attempt in range(1, LIMIT + 1):
        with raw_client(args, tmp_path) as client:
            client.initialize()
            client.send(call_request(server, attempt))
            await server.wait_for_run(attempt)
            [answer] = [m for m in client.hang_up() if m.get("id") == attempt]
        # The server did not exit: the proxy closed the session because its client left.
        assert answer["error"]["message"] == (
            "the client ended the session before this request was answered; the tool may have run"
        )
    params = StdioServerParameters(command=INTERCEPT, args=args, env=child_env(tmp_path))
    async with session(params) as client_session:
        assert_denied_by_the_limit(await client_session.call_tool("slow", {"seconds": 0}))
    assert server.runs_started() == LIMIT


@pytest.mark.parametrize("kind", ["sdk2", "sdk1", "sdk2-upstream"])
async def test_deleting_the_http_session_mid_call_leaves_the_call_counted(
    kind: str, policy: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`--listen` in front of a child per session, or of an HTTP upstream (`sdk2-upstream`)."""
    if kind == "sdk2-upstream":
        server, upstream = request.getfixturevalue("sdk2_http")
        service = proxy(policy, "--state", "memory", "--no-audit", "--upstream", upstream.url)
    else:
        server = make_server(kind, tmp_path, request)
        service = proxy(policy, "--state", "memory", "--no-audit", "--", *server.command)
    try:
        async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
            for attempt in range(1, LIMIT + 1):
                sid = await raw_session(http, service.url)
                call = asyncio.create_task(
                    http.post(
                        service.url,
                        json=call_request(server, 1),
                        headers={**SSE_ACCEPT, "mcp-session-id": sid},
                    )
                )
                await server.wait_for_run(attempt)
                deleted = await http.delete(service.url, headers={"mcp-session-id": sid})
                assert deleted.status_code == 200
                with anyio.fail_after(WAIT_SECONDS):
                    await call  # the POST ends without an answer: the session is gone
        async with (
            streamable_http_client(service.url) as (read, write),
            ClientSession(read, write) as client_session,
        ):
            await client_session.initialize()
            assert_denied_by_the_limit(await client_session.call_tool("slow", {"seconds": 0}))
        log = service.log.read_text()
    finally:
        service.stop()
    assert server.runs_started() == LIMIT
    assert "Traceback" not in log  # a session ended mid-call winds down; it does not fail


# -- cancelling ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sdk2", "sdk1"])
async def test_call_and_cancel_cannot_run_a_limited_tool_past_its_limit(
    kind: str, policy: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The SDK client sends `notifications/cancelled` for a call it abandons. The 2.x server
    does not answer the cancelled call; the 1.x server answers it with an error (code 0)."""
    server = make_server(kind, tmp_path, request)
    params = StdioServerParameters(
        command=INTERCEPT,
        args=run_args(policy, "--state", "memory", "--", *server.command),
        env=child_env(tmp_path),
    )
    async with session(params) as client_session:
        for attempt in range(1, LIMIT + 2):
            result: list[Any] = []

            async def call(into: list[Any] = result) -> None:
                into.append(await client_session.call_tool("slow", {"seconds": 60}))

            async with anyio.create_task_group() as group:
                group.start_soon(call)
                with anyio.fail_after(WAIT_SECONDS):
                    while not result and server.runs_started() < attempt:
                        await anyio.sleep(0.02)
                group.cancel_scope.cancel()
            if attempt > LIMIT:
                [denied] = result
                assert_denied_by_the_limit(denied)
            else:
                assert result == []
    assert server.runs_started() == LIMIT


# -- tools/list ------------------------------------------------------------------------------


def listed_names(message: Any) -> list[str]:
    return [tool["name"] for tool in message["result"]["tools"]]


def listing(message_id: Any) -> Callable[[Any], bool]:
    return lambda m: m.get("id") == message_id and "tools" in m.get("result", {})


@pytest.mark.parametrize("kind", ["sdk2", "sdk1"])
async def test_a_cancelled_tools_list_over_stdio_is_still_filtered(
    kind: str, policy: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Both SDKs answer a tools/list even when it is cancelled; the 1.x SDK also answers the
    cancelled call whose id the listing reuses, with an error that arrives first."""
    server = make_server(kind, tmp_path, request)
    args = run_args(policy, "--state", "memory", "--", *server.command)
    with raw_client(args, tmp_path) as client:
        client.initialize()
        client.send(rpc("tools/list", "l1"), rpc("notifications/cancelled", requestId="l1"))
        received = client.until(listing("l1"))
        client.send(call_request(server, "reused"))
        await server.wait_for_run(1)
        client.send(rpc("notifications/cancelled", requestId="reused"), rpc("tools/list", "reused"))
        received += client.until(listing("reused"))
    listings = [m for m in received if "tools" in m.get("result", {})]
    assert [m["id"] for m in listings] == ["l1", "reused"]
    for message in listings:
        assert listed_names(message) == ["slow"]


async def test_a_tools_list_cancelled_in_its_own_http_batch_is_still_filtered(
    policy: Path, tmp_path: Path
) -> None:
    """The batch goes to the child whole; the splitter hands the SDK server its elements."""
    server = counting_server(sys.executable, tmp_path)
    service = proxy(
        policy, "--state", "memory", "--no-audit", "--", sys.executable, SPLITTER, *server.command
    )
    try:
        async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:
            sid = await raw_session(http, service.url)
            batch = [rpc("tools/list", 7), rpc("notifications/cancelled", requestId=7)]
            response = await http.post(service.url, json=batch, headers={**SSE_ACCEPT, "mcp-session-id": sid})
    finally:
        service.stop()
    assert response.status_code == 200
    messages = (
        sse_messages(response.text)
        if response.headers["content-type"].startswith("text/")
        else [response.json()]
    )
    answers = [item for m in messages for item in (m if isinstance(m, list) else [m])]
    [answer] = [a for a in answers if a.get("id") == 7]
    assert listed_names(answer) == ["slow"]
