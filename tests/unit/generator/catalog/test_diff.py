"""The diff of a re-scan: curated fields kept, every kind of change reported, nothing unsafe printed."""

from __future__ import annotations

from generator.catalog.diff import diff_tools, schema_changes
from generator.catalog.entry import build_server_data
from generator.catalog.load import validate_server_data
from tests.unit.generator.catalog.scan_support import curated_old, result, tool


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
    assert validate_server_data(new)[1] == []

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
    old_hash = next(t for t in old["tools"] if t["name"] == "delete_item")["definition_hash"]
    assert changed["delete_item"].definition_hash == (old_hash, delete["definition_hash"])
    assert f"    definition_hash: {old_hash} -> {delete['definition_hash']}" in text
    assert old_hash != delete["definition_hash"]


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


def test_the_diff_never_prints_terminal_control_characters() -> None:
    old = build_server_data(result(tool("list_items", "Lists items.")), "demo")
    hostile = "Lists items.\x1b]0;owned\x07 \x1b[2J\u202eevil"
    new = build_server_data(result(tool("list_items", hostile), tool("x\u202ey")), "demo", old)
    text = diff_tools(old, new).render()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\u001b" in text and "\\u202e" in text
