"""Scan results and registry documents for the tests of turning scans into registry files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from generator.catalog.entry import build_server_data
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
