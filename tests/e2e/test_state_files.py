"""`intercept run` trusts only state and audit files of its own user, and creates them private.

Files another local user planted (chowned to nobody here, which the tests can do as root, as in
CI) in the state or audit directory refuse the start with a message naming the file and the
fix; files the proxy creates, SQLite's `-wal` and `-shm` included, are 0600 under a 022 umask.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.http_support import intercept_args
from tests.e2e.proxy_helpers import EVERYTHING, proxied, session, text_of

pytestmark = pytest.mark.e2e

POLICY = "tools:\n  echo:\n    rules:\n      - rate_limit: {max: 5, window: 60}\n"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def plant(path: Path, content: bytes = b"") -> Path:
    """A file in `path` as another user (nobody) would leave it."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root (as in CI)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    return path


def refused(policy: Path, *options: str) -> str:
    args = intercept_args(policy, *options, "--", "true")
    result = subprocess.run(args, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert result.stdout == b""
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    return stderr


@pytest.mark.parametrize("name", ["counters.sqlite3", "counters.sqlite3-wal", "counters.sqlite3-shm"])
def test_a_planted_state_file_refuses_the_start(policy: Path, tmp_path: Path, name: str) -> None:
    planted = plant(tmp_path / "state" / name)
    stderr = refused(policy, "--state-dir", str(tmp_path / "state"), "--no-audit")
    assert f"state file {planted} belongs to another user (uid 65534)" in stderr
    assert "fix: remove it" in stderr


def test_a_planted_audit_key_refuses_the_start(policy: Path, tmp_path: Path) -> None:
    planted = plant(tmp_path / "audit" / ".audit-hash-key", secrets.token_hex(32).encode())
    stderr = refused(policy, "--state", "memory", "--audit-log", str(tmp_path / "audit" / "events.jsonl"))
    assert f"audit log key file {planted} belongs to another user (uid 65534)" in stderr
    assert "fix: remove it" in stderr
    assert not (tmp_path / "audit" / "events.jsonl").exists()


def test_a_world_writable_state_directory_refuses_the_start(policy: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    stderr = refused(policy, "--state-dir", str(shared), "--no-audit")
    assert f"state directory {shared} is writable by group or others" in stderr and "chmod go-w" in stderr


def test_a_planted_log_file_refuses_the_start(policy: Path, tmp_path: Path) -> None:
    planted = plant(tmp_path / "proxy.log")
    stderr = refused(policy, "--state", "memory", "--no-audit", "--log-file", str(planted))
    assert f"log file {planted} belongs to another user (uid 65534)" in stderr


def modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


async def test_files_the_proxy_creates_are_private(policy: Path, tmp_path: Path, umask_022: None) -> None:
    state = tmp_path / "new" / "state"
    logs = tmp_path / "logs"
    params = proxied(
        policy,
        EVERYTHING,
        tmp_path,
        "--state",
        "sqlite",
        "--state-dir",
        str(state),
        "--audit-log",
        str(logs / "events.jsonl"),
        "--log-file",
        str(tmp_path / "proxy.log"),
    )
    async with session(params) as client:
        result = await client.call_tool("echo", {"message": "hi"})
        assert text_of(result) == "Echo: hi"
        # While the proxy runs, SQLite's -wal and -shm exist next to the database.
        state_files = modes(state)
        assert {"counters.sqlite3", "counters.sqlite3-wal", "counters.sqlite3-shm"} <= state_files.keys()
        assert set(state_files.values()) == {0o600}
        assert modes(logs) == {".audit-hash-key": 0o600, "events.jsonl": 0o600}
    assert stat.S_IMODE((tmp_path / "proxy.log").stat().st_mode) == 0o600
    for directory in (tmp_path / "new", state, logs):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
