"""Registry files from scans: run spec inference, deterministic YAML, curated fields kept, and the diff."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.catalog.models import Server, load_server_file
from generator.catalog.refresh import (
    DUMMY_URL,
    build_server_data,
    diff_tools,
    dummy_value,
    dump_yaml,
    refresh_entry,
    run_info_for,
    schema_changes,
)
from intercept.scan import ScannedTool, ScanResult

SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}


def tool(
    name: str,
    description: str = "",
    schema: dict[str, Any] | None = None,
    annotations: dict[str, Any] | None = None,
) -> ScannedTool:
    return ScannedTool(
        name, None, description or f"Does {name}.", schema or dict(SCHEMA), None, annotations or {}
    )


def result(*tools: ScannedTool, command: list[str] | None = None) -> ScanResult:
    return ScanResult(
        list(tools),
        "demo-server",
        "1.2.3",
        "2025-11-25",
        datetime(2026, 11, 26, 0, 0, tzinfo=UTC),
        command=command or ["npx", "-y", "@demo/mcp@1.2.3", "stdio"],
    )


def test_run_spec_is_inferred_from_the_command() -> None:
    npm = run_info_for(result(command=["npx", "-y", "@demo/mcp@1.2.3", "stdio"]))
    assert (npm.package_manager, npm.package, npm.version) == ("npm", "@demo/mcp", "1.2.3")
    assert npm.args == ["stdio"]
    uvx = ["/opt/bin/uvx", "mcp-server-time==2026.1.1", "--local-timezone", "UTC"]
    pypi = run_info_for(result(command=uvx))
    assert (pypi.package_manager, pypi.package, pypi.version) == ("pypi", "mcp-server-time", "2026.1.1")
    assert pypi.args == ["--local-timezone", "UTC"]
    binary = run_info_for(result(command=["/usr/local/bin/my-server", "--flag"]))
    assert (binary.package_manager, binary.package, binary.version) == ("binary", "my-server", "1.2.3")


def test_a_new_entry_is_a_valid_registry_file_and_dumps_deterministically(tmp_path: Path) -> None:
    scanned = result(tool("list_items"), tool("delete_item"))
    data = build_server_data(scanned, "demo", env_names=["DEMO_TOKEN"])
    text = dump_yaml(data)
    assert text == dump_yaml(build_server_data(scanned, "demo", env_names=["DEMO_TOKEN"]))
    assert "&id" not in text and "*id" not in text  # identical schemas are written out, not aliased
    path = tmp_path / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    server, errors = load_server_file(path)
    assert errors == [] and server is not None
    assert server.provenance.env_names == ["DEMO_TOKEN"]
    assert server.provenance.command == ["npx", "-y", "@demo/mcp@1.2.3", "stdio"]
    assert [t.category.value for t in server.tools] == ["read", "destructive"]
    assert "category" not in data["tools"][0]


def curated_old() -> dict[str, Any]:
    old = build_server_data(
        result(
            tool("list_items"), tool("delete_item"), tool("old_tool"), tool("rename_item", "Renames an item.")
        ),
        "demo",
    )
    old["name"] = "Demo (curated)"
    old["tags"] = ["demo"]
    old["tools"][1].update(
        category="write",
        category_reason="soft delete; items can be restored",
        summary="Moves an item to the bin.",
    )
    old["tools"][2]["summary"] = "Curated text for a tool that will disappear."
    return old


def test_update_keeps_curated_fields_and_reports_every_kind_of_change() -> None:
    old = curated_old()
    new_schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "force": {"type": "boolean"}},
        "required": ["id"],
    }
    rescanned = result(
        tool("list_items"),
        tool("delete_item", "Deletes an item forever.", new_schema),
        tool("rename_item", "Renames an item.", annotations={"readOnlyHint": True}),
        tool("create_item"),
    )
    new = build_server_data(rescanned, "demo", old)
    assert new["name"] == "Demo (curated)" and new["tags"] == ["demo"]
    delete = next(t for t in new["tools"] if t["name"] == "delete_item")
    assert delete["category"] == "write"
    assert delete["category_reason"] == "soft delete; items can be restored"
    assert delete["summary"] == "Moves an item to the bin."
    assert delete["description"] == "Deletes an item forever."
    Server.model_validate(new)

    diff = diff_tools(old, new)
    assert diff.added == ["create_item"]
    assert diff.removed == ["old_tool"]
    assert diff.dropped_curation == ["old_tool"]
    changed = {c.name: c for c in diff.changed}
    assert set(changed) == {"delete_item", "rename_item"}
    assert changed["delete_item"].description == ("Does delete_item.", "Deletes an item forever.")
    assert changed["delete_item"].schema_paths == ['+ properties.force: {"type": "boolean"}']
    assert changed["delete_item"].curated_kept == ["summary", "category", "category_reason"]
    assert changed["rename_item"].annotations is not None

    text = diff.render()
    assert "+ added    create_item" in text
    assert "- removed  old_tool (its curated fields were dropped)" in text
    assert "~ changed  delete_item: description, input schema" in text
    assert "! curated summary, category, category_reason kept; review it against the new text" in text
    assert "+Deletes an item forever." in text and "-Does delete_item." in text


def test_an_identical_rescan_reports_no_changes() -> None:
    old = curated_old()
    again = build_server_data(result(*[tool(t["name"], t["description"]) for t in old["tools"]]), "demo", old)
    assert diff_tools(old, again).empty
    assert diff_tools(old, again).render() == "no tool changes"


def test_schema_changes_name_added_removed_and_changed_paths() -> None:
    old = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    new = {"type": "object", "properties": {"a": {"type": "number"}, "c": {"type": "string"}}}
    assert schema_changes(old, new) == [
        '~ properties.a.type: "string" -> "number"',
        "- properties.b",
        '+ properties.c: {"type": "string"}',
    ]


def test_dummy_values_only_ever_point_at_loopback() -> None:
    assert dummy_value("GITLAB_API_URL") == DUMMY_URL
    assert DUMMY_URL.startswith("http://127.0.0.1:")
    assert dummy_value("MYSQL_HOST") == "127.0.0.1"
    assert dummy_value("MYSQL_PORT") == "9"
    assert "127.0.0.1" not in dummy_value("GITHUB_PERSONAL_ACCESS_TOKEN")


def test_dumped_yaml_loads_back_to_the_same_data() -> None:
    listed = tool("list_items", "Lists items: all of them — even 'quoted' ones.")
    data = build_server_data(result(listed), "demo")
    assert yaml.safe_load(dump_yaml(data)) == data


def test_the_diff_never_prints_terminal_control_characters() -> None:
    old = build_server_data(result(tool("list_items", "Lists items.")), "demo")
    hostile = "Lists items.\x1b]0;owned\x07 \x1b[2J\u202eevil"
    new = build_server_data(result(tool("list_items", hostile), tool("x\u202ey")), "demo", old)
    text = diff_tools(old, new).render()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\u001b" in text and "\\u202e" in text


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
