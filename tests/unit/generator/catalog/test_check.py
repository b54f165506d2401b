"""generator.catalog.check: stale or missing definition hashes and scan dummies in run commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.catalog.check import check_registry, check_server, fix_hashes
from generator.catalog.load import load_registry, load_server_file
from generator.resources import registry_dir
from intercept.util.tooldef import definition_hash
from tests.unit.generator.catalog.test_load import server_data, write


def _loaded(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    server, errors = load_server_file(write(tmp_path, data))
    assert errors == [] and server is not None
    return [e.render() for e in check_server(server)]


def _hashed(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tools with their hashes, and a reason for each category set by hand."""
    out = []
    for tool in tools:
        if "category" in tool:
            tool = {**tool, "category_reason": f"a person judged it {tool['category']}"}
        wire = {
            "name": tool["name"],
            "description": tool.get("description"),
            "inputSchema": tool.get("input_schema"),
            "annotations": tool.get("annotations"),
        }
        out.append({**tool, "definition_hash": definition_hash(wire)})
    return out


def test_a_hashed_entry_is_clean(tmp_path: Path) -> None:
    data = server_data()
    assert _loaded(tmp_path, {**data, "tools": _hashed(data["tools"])}) == []


def test_a_missing_hash_is_located_and_says_how_to_fix_it(tmp_path: Path) -> None:
    data = server_data()
    tools = _hashed(data["tools"])
    del tools[1]["definition_hash"]
    (error,) = _loaded(tmp_path, {**data, "tools": tools})
    assert error.startswith("tools[1] (cancel_job).definition_hash: missing")
    assert "--fix-hashes" in error


def test_a_definition_edited_after_the_scan_no_longer_matches(tmp_path: Path) -> None:
    data = server_data()
    tools = _hashed(data["tools"])
    tools[0]["description"] = "List jobs, and also email them to someone."
    (error,) = _loaded(tmp_path, {**data, "tools": tools})
    assert error.startswith("tools[0] (list_jobs).definition_hash: does not match")
    assert "intercept registry refresh" in error and "--fix-hashes" in error


def test_curated_fields_are_not_part_of_the_definition(tmp_path: Path) -> None:
    data = server_data()
    tools = _hashed(data["tools"])
    tools[0].update(summary="Lists jobs.", risk="medium", risk_reason="job names can be sensitive")
    assert _loaded(tmp_path, {**data, "tools": tools}) == []


def test_a_category_set_by_hand_needs_a_reason(tmp_path: Path) -> None:
    data = server_data()
    tools = _hashed(data["tools"])
    del tools[1]["category_reason"]
    (error,) = _loaded(tmp_path, {**data, "tools": tools})
    assert error.startswith("tools[1] (cancel_job).category_reason: category 'execute' is set by hand")
    assert "add a one-line category_reason" in error and "remove category" in error


def test_fix_hashes_writes_each_hash_once_and_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    data = server_data()
    path = write(tmp_path, data)
    assert fix_hashes(path) == 2
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [t["definition_hash"] for t in written["tools"]] == [
        t["definition_hash"] for t in _hashed(data["tools"])
    ]
    assert [t.get("category_reason") for t in written["tools"]] == [None, None]
    assert list(written["tools"][1])[-1] == "definition_hash"
    assert {k: v for k, v in written.items() if k != "tools"} == {
        k: v for k, v in data.items() if k != "tools"
    }
    before = path.read_bytes()
    assert fix_hashes(path) == 0
    assert path.read_bytes() == before


def test_fix_hashes_refuses_an_invalid_file(tmp_path: Path) -> None:
    path = write(tmp_path, server_data(slug="Bad Slug"), "acme.yaml")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="slug"):
        fix_hashes(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "env", "flagged"),
    [
        (["postgresql://127.0.0.1:9/postgres"], {}, ["run.args[0]"]),
        (["redis://localhost:6399"], {}, ["run.args[0]"]),
        (["--dir=/tmp/mcp-fs-scan"], {}, ["run.args[0]"]),
        (["/tmp/scan"], {}, ["run.args[0]"]),
        ([], {"API_KEY": "intercept-scan-dummy"}, ["run.env.API_KEY"]),
        ([], {"BASE_URL": "http://[::1]:9"}, ["run.env.BASE_URL"]),
        (["--url=<DATABASE_URL>", "--headless"], {"API_KEY": "<API_KEY>"}, []),
        (["https://api.example.com/mcp", "--port=8080", "/srv/data"], {"REGION": "us-east-1"}, []),
    ],
)
def test_run_values_that_look_like_scan_dummies_are_flagged(
    tmp_path: Path, args: list[str], env: dict[str, str], flagged: list[str]
) -> None:
    data = server_data()
    placeholders = {
        n: "x" for n in ("DATABASE_URL", "API_KEY") if any(f"<{n}>" in v for v in [*args, *env.values()])
    }
    run = {**data["run"], "args": args, "env": env, "scan_values": placeholders}
    errors = _loaded(tmp_path, {**data, "run": run, "tools": _hashed(data["tools"])})
    assert [e.split(":")[0] for e in errors] == flagged
    assert all("placeholder" in e and "scan_values" in e for e in errors)


def test_the_shipped_registry_passes_every_check() -> None:
    registry = load_registry(registry_dir())
    assert [p.render() for p in check_registry(registry_dir(), registry.servers)] == []
