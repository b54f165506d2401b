"""`intercept run` as a process, against a small fake server: hygiene, signals, exits, raw-byte attacks."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from intercept.cli import main

FAKE_SERVER = Path(__file__).with_name("proxy_fake_server.py")
WITH_GRACE = Path(__file__).with_name("run_proxy_with_grace.py")
POLICY = """
hide: [secret]
tools:
  echo:
    rules:
      - validate: {required_args: true}
  limited:
    rules:
      - rate_limit: {max: 1, window: 60}
"""
INIT = {
    "jsonrpc": "2.0",
    "id": "init",
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


class Proxy:
    def __init__(
        self,
        tmp_path: Path,
        policy: str = POLICY,
        extra: tuple[str, ...] = (),
        server_env: dict[str, str] | None = None,
        exit_grace: float | None = None,
    ) -> None:
        """`exit_grace`: the server's shutdown grace, if not the default (see run_proxy_with_grace)."""
        self.policy = tmp_path / "policy.yaml"
        self.policy.write_text(policy)
        self.server_log = tmp_path / "server.log"
        self.server_log.write_bytes(b"")
        self.audit = tmp_path / "audit.jsonl"
        env = {**os.environ, "FAKE_LOG": str(self.server_log), **(server_env or {})}
        launcher = ["-m", "intercept", "run"] if exit_grace is None else [str(WITH_GRACE), str(exit_grace)]
        self.process = subprocess.Popen(
            [
                sys.executable,
                *launcher,
                "-c",
                str(self.policy),
                "--state",
                "memory",
                "--audit-log",
                str(self.audit),
                "--log-level",
                "debug",
                *extra,
                "--",
                sys.executable,
                str(FAKE_SERVER),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.raw_stdout: list[bytes] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.raw_stdout.append(line)
            self.lines.put(line)

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: Any) -> None:
        self.write(json.dumps(message).encode() + b"\n")

    def read(self, timeout: float = 15.0) -> Any:
        return json.loads(self.lines.get(timeout=timeout))

    def request(self, message: Any) -> Any:
        self.send(message)
        return self.read()

    def start(self) -> None:
        assert self.request(INIT)["result"]["serverInfo"]["name"] == "fake"
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def finish(self, timeout: float = 15.0) -> tuple[int, bytes]:
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(timeout)
        assert self.process.stderr is not None
        return code, self.process.stderr.read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(15)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None and not pipe.closed:
                with contextlib.suppress(OSError):
                    pipe.close()

    def server_received(self) -> bytes:
        return self.server_log.read_bytes()


def call(mid: Any, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": mid,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments or {}},
    }


@pytest.fixture
def proxy(tmp_path: Path) -> Any:
    p = Proxy(tmp_path)
    yield p
    p.close()


def test_stdout_carries_only_protocol_messages_and_exit_status_is_the_servers(proxy: Proxy) -> None:
    proxy.start()
    assert (
        proxy.request(call(1, "echo", {"message": "hi"}))["result"]["content"][0]["text"]
        == '{"message": "hi"}'
    )
    code, stderr = proxy.finish()
    assert code == 7
    for line in proxy.raw_stdout:
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert b"INFO intercept.run: proxying" in stderr  # diagnostics went to stderr
    events = [json.loads(line)["event"] for line in proxy.audit.read_text().splitlines()]
    assert events[0] == "startup" and events[-1] == "shutdown" and "tool_call" in events


@pytest.mark.parametrize(
    "raw",
    [
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","name":"secret","arguments":{}}}',
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"secr\xc3t","arguments":{}}}',
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"secret\\ud800","arguments":{}}}',
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":{"s":"secret"}}}',
        b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"secret"}',
        b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"secret"}}',
    ],
)
def test_raw_malformed_bytes_are_answered_with_errors_and_never_reach_the_server(
    proxy: Proxy, raw: bytes
) -> None:
    proxy.start()
    proxy.write(raw + b"\n")
    reply = proxy.read()
    assert reply["error"]["code"] in (-32700, -32600, -32602)
    assert proxy.request({"jsonrpc": "2.0", "id": "after", "method": "ping"}) == {
        "jsonrpc": "2.0",
        "id": "after",
        "result": {},
    }
    assert b"secret" not in proxy.server_received() and b"secr" not in proxy.server_received()


def test_raw_batch_with_a_denied_element(proxy: Proxy) -> None:
    proxy.start()
    proxy.write(
        b'[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"secret"}},'
        b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"m"}}}]\n'
    )
    replies = [proxy.read(), proxy.read()]
    flat = [r for reply in replies for r in (reply if isinstance(reply, list) else [reply])]
    by_id = {r["id"]: r for r in flat}
    assert "hidden by policy" in by_id[1]["result"]["content"][0]["text"]
    assert by_id[2]["result"]["content"][0]["text"] == '{"message": "m"}'
    assert b"secret" not in proxy.server_received()


def test_oversized_message_gets_an_error_and_the_proxy_carries_on(tmp_path: Path) -> None:
    p = Proxy(tmp_path, extra=("--max-message-bytes", "4096"))
    try:
        p.start()
        p.write(b'{"jsonrpc":"2.0","id":9,"method":"ping","params":{"pad":"' + b"x" * 100_000 + b'"}}\n')
        assert "4096-byte limit" in p.read()["error"]["message"]
        assert p.request({"jsonrpc": "2.0", "id": 10, "method": "ping"})["id"] == 10
        assert b"xxxx" not in p.server_received()
    finally:
        p.close()


def test_server_death_answers_pending_calls_with_errors(proxy: Proxy) -> None:
    proxy.start()
    proxy.send(call("slow", "hang"))
    proxy.send(call("boom", "die"))
    reply = proxy.read()
    assert reply["id"] == "slow" and reply["error"]["code"] == -32000
    assert proxy.process.wait(15) == 5


def test_sigterm_is_forwarded_to_the_server_and_its_status_returned(proxy: Proxy) -> None:
    proxy.start()
    proxy.process.send_signal(signal.SIGTERM)
    assert proxy.process.wait(15) == 42


def test_sigint_is_forwarded_to_the_server_and_its_status_returned(proxy: Proxy) -> None:
    proxy.start()
    proxy.process.send_signal(signal.SIGINT)
    assert proxy.process.wait(15) == 43


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 42), (signal.SIGINT, 43)])
def test_a_signal_while_the_proxy_waits_for_the_server_to_exit_is_forwarded(
    tmp_path: Path, signum: int, status: int
) -> None:
    p = Proxy(tmp_path, server_env={"FAKE_LINGER": "1"})  # a 5 s grace: the signal comes first
    try:
        p.start()
        p.send(call("gone", "close_stdout"))  # the server stops talking but keeps running
        assert p.read()["error"]["code"] == -32000
        time.sleep(0.5)  # the proxy has moved on to waiting for the server to exit
        p.process.send_signal(signum)
        assert p.process.wait(15) == status
    finally:
        p.close()


@pytest.mark.parametrize(
    ("server_env", "status"),
    [({}, 42), ({"FAKE_IGNORE_TERM": "1"}, 128 + signal.SIGKILL)],
    ids=["exits-on-sigterm", "needs-sigkill"],
)
def test_a_server_that_ignores_end_of_input_is_stopped_after_the_grace(
    tmp_path: Path, server_env: dict[str, str], status: int
) -> None:
    p = Proxy(tmp_path, server_env={"FAKE_LINGER": "1", **server_env}, exit_grace=0.5)
    try:
        p.start()
        code, stderr = p.finish()
        assert code == status
        assert p.read()["params"]["data"] == "bye"  # written after its input closed: still relayed
        assert b"did not exit 0.5 s after its input was closed; sending SIGTERM" in stderr
    finally:
        p.close()


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_state_fail_mode_when_the_sqlite_database_is_locked(tmp_path: Path, mode: str) -> None:
    state_dir = tmp_path / "state"
    p = Proxy(tmp_path, extra=("--state", "sqlite", "--state-dir", str(state_dir), "--state-fail-mode", mode))
    try:
        p.start()
        locker = sqlite3.connect(state_dir / "counters.sqlite3", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past the busy timeout
        try:
            locked = p.request(call("locked", "limited"))["result"]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        if mode == "closed":
            assert locked["isError"] is True
            assert "counter store is unavailable" in locked["content"][0]["text"]
            assert b'"locked"' not in p.server_received()
        else:
            assert locked == {"content": [{"type": "text", "text": "{}"}], "isError": False}
            assert b'"locked"' in p.server_received()
        # Either way the locked call was not counted: the limit of one still admits one call.
        assert p.request(call("first", "limited"))["result"]["isError"] is False
        second = p.request(call("second", "limited"))["result"]
        assert second["isError"] is True and "rate limit" in second["content"][0]["text"]
        _code, stderr = p.finish()
        assert b"counter store failed" in stderr and f"failing {mode}".encode() in stderr
    finally:
        p.close()


def test_hot_reload_changes_decisions_without_a_restart(proxy: Proxy) -> None:
    proxy.start()
    assert proxy.request(call(1, "echo", {"message": "a"}))["result"]["isError"] is False
    proxy.policy.write_text(POLICY.replace("hide: [secret]", "hide: [secret, echo]"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        reply = proxy.request(call(f"r{time.monotonic()}", "echo", {"message": "a"}))
        if reply["result"].get("isError"):
            assert "hidden by policy" in reply["result"]["content"][0]["text"]
            break
        time.sleep(0.2)
    else:
        raise AssertionError("reload never took effect")
    proxy.policy.write_text("tools: [broken\n")
    time.sleep(1.5)
    reply = proxy.request(call("still", "echo", {"message": "a"}))
    assert "hidden by policy" in reply["result"]["content"][0]["text"]  # the last valid policy stays
    _code, stderr = proxy.finish()
    assert b"policy reload rejected" in stderr


def test_invalid_policy_exits_1_without_touching_stdout(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("tools:\n  t:\n    rules:\n      - rate_limt: 1/minute\n")
    result = subprocess.run(
        [sys.executable, "-m", "intercept", "run", "-c", str(policy), "--", "true"],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 1 and result.stdout == b""
    assert b"rate_limt" in result.stderr and b"Traceback" not in result.stderr


def test_unstartable_server_exits_127(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("default: allow\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "intercept",
            "run",
            "-c",
            str(policy),
            "--no-audit",
            "--state",
            "memory",
            "--",
            str(tmp_path / "no-such-server"),
        ],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 127 and result.stdout == b"" and b"cannot start MCP server" in result.stderr


def test_go_style_invocation_is_accepted(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("default: allow\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "intercept",
            "-c",
            str(policy),
            "--",
            sys.executable,
            "-c",
            "import sys; sys.exit(3)",
        ],
        capture_output=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert result.returncode == 3 and result.stdout == b""
    assert (tmp_path / ".intercept" / "state" / "counters.sqlite3").exists()


@pytest.mark.parametrize(
    "option", [["--max-sessions", "0"], ["--header-timeout", "0"], ["--max-buffered-bytes", "10"]]
)
def test_out_of_range_limits_are_usage_errors(tmp_path: Path, option: list[str]) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("tools: {}\n")
    result = CliRunner().invoke(main, ["run", "-c", str(policy), "--listen", ":1", *option, "--", "cmd"])
    assert result.exit_code == 2 and option[0] in result.output


def test_the_cli_reports_conflicts_as_usage_errors(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("tools: {}\n")
    runner = CliRunner()
    result = runner.invoke(main, ["run", "-c", str(policy), "--upstream", "https://x/mcp", "--", "cmd"])
    assert result.exit_code == 2 and "not both" in result.output
    exported = runner.invoke(
        main,
        ["run", "-c", str(policy), "--client-token", "t", "--", "cmd"],
        env={"INTERCEPT_CLIENT_TOKEN": "x"},
    )
    assert exported.exit_code == 2 and "need --listen" in exported.output
