"""`intercept registry add` with real packages: installed with no install scripts, scanned in the
sandbox through the MCP SDK client, written as valid entries; a failing package is recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator.catalog.failures import FAILURES_FILE, read_failures
from generator.catalog.load import load_registry, load_server_file

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def intercept(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercept", *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        check=False,
    )


def test_add_npm_and_pypi_packages_then_record_one_that_fails(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    (tmp_path / "list.txt").write_text(
        "# one a line, arguments after the package\n"
        "npm:@modelcontextprotocol/server-everything@2026.8.31 stdio\n"
        "pypi:mcp-server-time@2026.10.19\n"
        "npm:@modelcontextprotocol/server-postgres@0.6.2\n",
        encoding="utf-8",
    )
    log = tmp_path / "log.jsonl"
    done = intercept(
        "registry", "add", "--registry", str(registry), "--from", str(tmp_path / "list.txt"),
        "--jobs", "2", "--timeout", "120", "--log", str(log),
    )  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr  # one package could not be added
    assert "1 of 3 packages could not be added" in done.stderr
    everything, errors = load_server_file(registry / "everything.yaml")
    assert errors == [] and everything is not None
    assert (everything.run.package_manager, everything.run.version, everything.run.args) == (
        "npm",
        "2026.8.31",
        ["stdio"],
    )
    assert everything.provenance.command == [
        "npx",
        "-y",
        "@modelcontextprotocol/server-everything@2026.8.31",
        "stdio",
    ]
    assert everything.provenance.server_name and everything.provenance.protocol_version
    assert everything.repository == "https://github.com/modelcontextprotocol/servers"
    assert {"echo", "get-sum"} <= {t.name for t in everything.tools}
    time_entry, errors = load_server_file(registry / "time.yaml")
    assert errors == [] and time_entry is not None
    assert time_entry.provenance.command == ["uvx", "mcp-server-time==2026.10.19"]
    assert [t.name for t in time_entry.tools] == ["get_current_time", "convert_time"]
    assert not (registry / "postgres.yaml").exists()
    [failure] = read_failures(registry / FAILURES_FILE)
    assert (failure.package, failure.version) == ("@modelcontextprotocol/server-postgres", "0.6.2")
    assert any("database URL" in line for line in failure.error)
    assert len(load_registry(registry).servers) == 2  # the failures file is not an entry
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["reason"] or "ok" for r in rows) == [failure.reason, "ok", "ok"]

    again = intercept("registry", "add", "--registry", str(registry), "pypi:mcp_server_time")
    assert again.returncode == 0
    assert "already in the registry as time; skipped" in again.stdout


def test_scan_sandbox_installs_an_npx_package_without_scripts(tmp_path: Path) -> None:
    out = tmp_path / "e.yaml"
    done = intercept(
        "scan",
        "--sandbox",
        "-o",
        str(out),
        "--",
        "npx",
        "-y",
        "@modelcontextprotocol/server-everything",
        "stdio",
    )
    assert done.returncode == 0, done.stderr
    entry, errors = load_server_file(out)
    assert errors == [] and entry is not None
    assert entry.run.version not in ("", "latest") and entry.run.args == ["stdio"]


def test_bad_package_spec_is_a_usage_error(tmp_path: Path) -> None:
    done = intercept("registry", "add", "--registry", str(tmp_path), "left-pad")
    assert done.returncode == 2
    assert "npm:NAME[@VERSION]" in done.stderr and "Traceback" not in done.stderr
