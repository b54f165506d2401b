"""`intercept pin` and `intercept pin --check` through the CLI against a real server (mcp-server-time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from intercept.policy import load_policy

pytestmark = pytest.mark.e2e

# The test extra installs mcp-server-time; its two tools are get_current_time and convert_time.
SERVER = str(Path(sys.executable).parent / "mcp-server-time")
STALE = "sha256:" + "0" * 64

POLICY = f"""# reviewed policy: comments and layout must survive
default: deny  # nothing else
tools:
  get_current_time:
    rules:
      - action: allow
  convert_time:
    pin: "{STALE}"   # from last month
    rules: []
  retired_tool:
    pin: "{STALE}"
"""


def intercept(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercept", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_pin_writes_current_hashes_then_check_sees_only_what_the_server_lacks(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)

    check = intercept("pin", "--check", "-c", str(policy), "--", SERVER)
    assert check.returncode == 1, check.stderr
    assert check.stdout == "changed  convert_time\nremoved  retired_tool\n"
    assert policy.read_text() == POLICY  # --check never writes

    done = intercept("pin", "-c", str(policy), "--", SERVER)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "removed  retired_tool\n"
    assert f"{policy}: pinned 2 tools" in done.stderr
    pins = load_policy(policy).pins()
    assert set(pins) == {"get_current_time", "convert_time", "retired_tool"}
    assert pins["get_current_time"] != STALE and pins["convert_time"] != STALE
    written = policy.read_text().splitlines()
    original = POLICY.splitlines()
    assert [line for line in written if "pin:" not in line] == [
        line for line in original if "pin:" not in line
    ]
    assert f'    pin: "{pins["convert_time"]}"   # from last month' in written

    retired = policy.read_text().replace(f'  retired_tool:\n    pin: "{STALE}"\n', "")
    policy.write_text(retired)
    clean = intercept("pin", "--check", "-c", str(policy), "--", SERVER)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout == f"{policy}: no drift (2 pinned tools match)\n"


def test_check_reports_tools_the_policy_does_not_name(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools:\n  get_current_time:\n    rules: []\n")
    check = intercept("pin", "--check", "-c", str(policy), "--", SERVER)
    assert check.returncode == 1
    assert check.stdout == "added    convert_time\n"


def test_bad_usage_and_an_invalid_policy_are_clear_errors(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools:\n  t:\n    pin: nope\n")
    done = intercept("pin", "-c", str(policy), "--", SERVER)
    assert done.returncode == 1 and "pin must be 'sha256:'" in done.stderr
    assert "Traceback" not in done.stderr
    usage = intercept("pin", "-c", str(policy))
    assert usage.returncode == 2 and "give a server command" in usage.stderr
