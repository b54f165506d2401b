"""`intercept scan` against real servers: server-everything (npm, via npx) and mcp-server-time (PyPI, uvx).

Needs node/npx and uv (`pip install uv`); the first run downloads the two packages.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from generator.catalog.load import load_server_file
from generator.catalog.models import Category
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

EVERYTHING = ["npx", "-y", "@modelcontextprotocol/server-everything@2026.8.31", "stdio"]
TIME_PACKAGE = "mcp-server-time==2026.10.19"
ROOT = Path(__file__).resolve().parents[2]


def uvx() -> str:
    found = shutil.which("uvx") or str(Path(sys.executable).parent / "uvx")
    assert Path(found).exists(), "uvx is needed: pip install uv"
    return found


def intercept(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercept", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def test_scan_server_everything_through_npx_then_update_it(tmp_path: Path) -> None:
    path = tmp_path / "everything.yaml"
    first = intercept("scan", "-o", str(path), "--timeout", "240", "--", *EVERYTHING)
    assert first.returncode == 0, first.stderr
    server, errors = load_server_file(path)
    assert errors == [] and server is not None
    names = [t.name for t in server.tools]
    assert {"echo", "get-sum", "get-env"} <= set(names)
    assert server.run.package_manager == "npm"
    assert server.run.package == "@modelcontextprotocol/server-everything"
    assert server.provenance.command == EVERYTHING
    assert server.provenance.protocol_version and server.provenance.server_name
    echo = server.tool("echo")
    assert echo is not None and echo.category is Category.READ and echo.evidence
    assert echo.input_schema["properties"]["message"]["type"] == "string"

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["description"] = "Curated description."
    by_name = {t["name"]: t for t in data["tools"]}
    by_name["echo"]["description"] = "Echoes back the input string, and did something else before."
    by_name["get-sum"]["input_schema"]["properties"].pop("b")
    by_name["get-env"].update(category="execute", category_reason="exposes secrets in the environment")
    data["tools"] = [t for t in data["tools"] if t["name"] != "get-tiny-image"]
    data["tools"].append({"name": "legacy_tool", "description": "Gone from the server.", "summary": "Old."})
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")

    second = intercept("scan", "--update", str(path), "--timeout", "240", "--", *EVERYTHING)
    assert second.returncode == 0, second.stderr
    assert "+ added    get-tiny-image" in second.stdout
    assert "- removed  legacy_tool (its curated fields were dropped)" in second.stdout
    assert "~ changed  echo: description" in second.stdout
    assert "~ changed  get-sum: input schema" in second.stdout
    assert "+ properties.b" in second.stdout
    updated, errors = load_server_file(path)
    assert errors == [] and updated is not None
    assert updated.description == "Curated description."
    get_env = updated.tool("get-env")
    assert get_env is not None and get_env.category is Category.EXECUTE and get_env.category_curated
    assert get_env.category_reason == "exposes secrets in the environment"
    assert updated.tool("legacy_tool") is None


def test_scan_mcp_server_time_from_pypi(tmp_path: Path) -> None:
    path = tmp_path / "time.yaml"
    done = intercept("scan", "-o", str(path), "--timeout", "240", "--", uvx(), TIME_PACKAGE)
    assert done.returncode == 0, done.stderr
    server, errors = load_server_file(path)
    assert errors == [] and server is not None
    assert [t.name for t in server.tools] == ["get_current_time", "convert_time"]
    assert (server.run.package_manager, server.run.package, server.run.version) == (
        "pypi",
        "mcp-server-time",
        "2026.10.19",
    )
    assert all(t.category is Category.READ for t in server.tools)
    assert "timezone" in server.tools[0].input_schema["properties"]


def test_registry_refresh_rescans_the_real_time_entry(tmp_path: Path) -> None:
    shutil.copy(ROOT / "registry" / "time.yaml", tmp_path / "time.yaml")
    done = intercept("registry", "refresh", "--registry", str(tmp_path), "time", "--timeout", "240")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "== time: 2 tools; no tool changes" in done.stdout
    refreshed, errors = load_server_file(tmp_path / "time.yaml")
    assert errors == [] and refreshed is not None
    assert refreshed.provenance.command == ["uvx", TIME_PACKAGE]


def test_a_server_that_fails_to_start_shows_its_stderr_and_exits_non_zero(tmp_path: Path) -> None:
    done = intercept(
        "scan",
        "-o",
        str(tmp_path / "x.yaml"),
        "--timeout",
        "240",
        "--",
        "npx",
        "-y",
        "@modelcontextprotocol/server-postgres@0.6.2",
    )
    assert done.returncode == 1
    assert "Please provide a database URL" in done.stderr
    assert not (tmp_path / "x.yaml").exists()


@pytest.fixture
def http_server() -> Iterator[str]:
    port = free_port()
    script = str(Path(__file__).with_name("http_mcp_server.py"))
    process = subprocess.Popen(
        [sys.executable, script, str(port), "s3cret"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_scan_a_streamable_http_upstream_with_a_header(tmp_path: Path, http_server: str) -> None:
    path = tmp_path / "widgets.yaml"
    refused = intercept("scan", "-o", str(path), "--timeout", "20", "--upstream", http_server)
    assert refused.returncode == 1 and f"cannot scan {http_server}" in refused.stderr
    assert not path.exists()
    done = intercept(
        "scan",
        "-o",
        str(path),
        "--timeout",
        "20",
        "--upstream",
        http_server,
        "--header",
        "Authorization: Bearer s3cret",
    )
    assert done.returncode == 0, done.stderr
    server, errors = load_server_file(path)
    assert errors == [] and server is not None
    assert [t.name for t in server.tools] == ["list_widgets", "delete_widget"]
    assert (server.run.package_manager, server.run.transport, server.run.url) == (
        "remote",
        "streamable-http",
        http_server,
    )
    assert "s3cret" not in path.read_text(encoding="utf-8")
    categories = {t.name: t.category for t in server.tools}
    assert categories == {"list_widgets": Category.READ, "delete_widget": Category.DESTRUCTIVE}


def test_definition_hashes_are_stable_across_scans_and_match_the_shipped_entry(tmp_path: Path) -> None:
    # The test extra installs the same mcp-server-time version that registry/time.yaml records.
    server_bin = str(Path(sys.executable).parent / "mcp-server-time")
    hashes = []
    for run in ("first", "second"):
        path = tmp_path / run / "time.yaml"
        path.parent.mkdir()
        done = intercept("scan", "-o", str(path), "--timeout", "120", "--", server_bin)
        assert done.returncode == 0, done.stderr
        server, errors = load_server_file(path)
        assert errors == [] and server is not None
        assert all(t.definition_hash == t.computed_definition_hash() for t in server.tools)
        hashes.append({t.name: t.definition_hash for t in server.tools})
    shipped, errors = load_server_file(ROOT / "registry" / "time.yaml")
    assert errors == [] and shipped is not None
    assert hashes[0] == hashes[1] == {t.name: t.definition_hash for t in shipped.tools}
    assert all(h and h.startswith("sha256:") for h in hashes[0].values())
