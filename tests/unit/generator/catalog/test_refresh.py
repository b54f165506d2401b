"""`intercept registry refresh`: a re-scan started the way the entry says, written back with placeholders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from generator.catalog.entry import build_server_data, dump_yaml
from generator.catalog.load import load_server_file
from generator.catalog.refresh import refresh_entry
from tests.unit.generator.catalog.scan_support import result, tool

FAKE = str(Path(__file__).parents[3] / "unit" / "intercept" / "fake_mcp_server.py")


def test_refresh_starts_the_server_with_scan_values_and_writes_placeholders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = Path(sys.executable)
    monkeypatch.setenv("PATH", f"{python.parent}{os.pathsep}{os.environ['PATH']}")
    command = [python.name, FAKE, "argv", "--token=<DEMO_TOKEN>"]
    data = build_server_data(result(tool("old_tool"), command=command), "demo")
    data["run"]["scan_values"] = {"DEMO_TOKEN": "t0k-scan"}
    path = tmp_path / "demo.yaml"
    path.write_text(dump_yaml(data), encoding="utf-8")

    outcome = refresh_entry(path, timeout=30)

    assert outcome.ok, (outcome.headline, outcome.detail)
    server, errors = load_server_file(path)
    assert errors == [] and server is not None
    shown = server.tool("show_argv")
    assert shown is not None and shown.description == "--token=t0k-scan"  # what the server got
    assert server.run.args[-1] == "--token=<DEMO_TOKEN>"
    assert server.run.scan_values == {"DEMO_TOKEN": "t0k-scan"}
    assert server.provenance.command[-1] == "--token=<DEMO_TOKEN>"


def test_refresh_fills_env_placeholders_records_history_and_shows_the_new_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = Path(sys.executable)
    monkeypatch.setenv("PATH", f"{python.parent}{os.pathsep}{os.environ['PATH']}")
    data = build_server_data(result(tool("show_env", "unset"), command=[python.name, FAKE, "env"]), "demo")
    data["run"]["env"] = {"FAKE_SCAN_VALUE": "<FAKE_VALUE>"}
    data["run"]["scan_values"] = {"FAKE_VALUE": "scan-only"}
    old_hash = data["tools"][0]["definition_hash"]
    path = tmp_path / "demo.yaml"
    path.write_text(dump_yaml(data), encoding="utf-8")

    outcome = refresh_entry(path, timeout=30)

    assert outcome.ok, (outcome.headline, outcome.detail)
    server, errors = load_server_file(path)
    assert errors == [] and server is not None
    assert server.run.env == {"FAKE_SCAN_VALUE": "<FAKE_VALUE>"}
    (reported,) = server.tools
    assert "scan-only" in reported.description  # the server saw the scan value, users see the placeholder
    assert reported.definition_hash == reported.computed_definition_hash() != old_hash
    assert f"definition_hash: {old_hash} -> {reported.definition_hash}" in outcome.detail
    first, latest = server.history
    assert first.tools == 1 and not (first.added or first.removed or first.changed)
    assert list(latest.changed) == ["show_env"] and "description" in latest.changed["show_env"]
