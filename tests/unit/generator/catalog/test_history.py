"""A server's history: one compact entry per scan that changed something, written by every re-scan."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from generator.catalog.entry import build_server_data
from generator.catalog.history import changed_fields, history_entry, next_history
from generator.catalog.load import validate_server_data
from tests.unit.generator.catalog.scan_support import curated_old, result, tool

LATER = datetime(2027, 1, 10, 9, 30, tzinfo=UTC)


def _rescan(old: dict[str, Any], *tools: Any, version: str = "1.2.3") -> dict[str, Any]:
    scan = dataclasses.replace(result(*tools), server_version=version, obtained_at=LATER)
    return build_server_data(scan, "demo", old)


def test_a_first_scan_records_date_version_and_tool_count() -> None:
    first = build_server_data(result(tool("list_items"), tool("delete_item")), "demo")
    assert first["history"] == [
        {"obtained_at": "2026-11-26T00:00:00Z", "server_version": "1.2.3", "tools": 2}
    ]
    server, problems = validate_server_data(first)
    assert problems == [] and server is not None
    assert server.history[0].tools == 2 and server.history[0].obtained_at.year == 2026


def test_a_rescan_appends_what_was_added_removed_and_changed() -> None:
    old = curated_old()
    new = _rescan(
        old,
        tool("list_items"),
        tool("delete_item", "Deletes an item forever.", annotations={"destructiveHint": True}),
        tool("rename_item", "Renames an item."),
        tool("create_item"),
        version="1.3.0",
    )
    assert new["history"][:-1] == old["history"]
    assert new["history"][-1] == {
        "obtained_at": "2027-01-10T09:30:00Z",
        "server_version": "1.3.0",
        "tools": 4,
        "added": ["create_item"],
        "removed": ["old_tool"],
        "changed": {"delete_item": ["description", "annotations"]},
    }
    server, problems = validate_server_data(new)
    assert problems == [] and server is not None
    assert server.history[-1].changed == {"delete_item": ["description", "annotations"]}


def test_an_unchanged_rescan_adds_nothing_but_a_new_version_is_recorded() -> None:
    old = curated_old()
    same = [tool(t["name"], t["description"]) for t in old["tools"]]
    assert _rescan(old, *same)["history"] == old["history"]
    bumped = _rescan(old, *same, version="1.2.4")["history"]
    assert len(bumped) == len(old["history"]) + 1
    assert bumped[-1] == {"obtained_at": "2027-01-10T09:30:00Z", "server_version": "1.2.4", "tools": 4}


def test_a_file_without_history_gets_its_previous_scan_as_the_first_entry() -> None:
    old = curated_old()
    del old["history"]
    new = _rescan(old, tool("list_items"))
    assert [e["obtained_at"] for e in new["history"]] == ["2026-11-26T00:00:00Z", "2027-01-10T09:30:00Z"]
    assert new["history"][0] == {"obtained_at": "2026-11-26T00:00:00Z", "server_version": "1.2.3", "tools": 4}
    assert new["history"][1]["removed"] == ["delete_item", "old_tool", "rename_item"]


def test_absent_fields_compare_as_their_defaults() -> None:
    assert changed_fields({"name": "a"}, {"name": "a", "description": "", "annotations": {}}) == []
    assert changed_fields({"name": "a"}, {"name": "a", "input_schema": {"type": "object"}}) == []
    assert changed_fields({"title": "A"}, {"title": "B", "output_schema": {"type": "object"}}) == [
        "title",
        "output_schema",
    ]


def test_history_entry_and_next_history_agree_on_a_first_scan() -> None:
    doc = build_server_data(result(tool("a")), "demo")
    assert next_history(None, doc) == [history_entry(None, doc)]
