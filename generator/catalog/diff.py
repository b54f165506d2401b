"""What a re-scan changed: the tools added, removed and changed between two registry documents."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from generator.catalog.entry import TOOL_CURATED_KEYS
from intercept.scan import terminal_safe


@dataclass
class ToolChange:
    name: str
    description: tuple[str, str] | None = None
    title: tuple[str, str] | None = None
    schema_paths: list[str] = field(default_factory=list)
    annotations: tuple[str, str] | None = None
    curated_kept: list[str] = field(default_factory=list)
    definition_hash: tuple[str, str] | None = None
    """Old and new hash when the definition changed: what a policy's `pin` must be updated to."""


@dataclass
class RegistryDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ToolChange] = field(default_factory=list)
    dropped_curation: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def render(self) -> str:
        """The diff for a terminal; every piece of server text passes through terminal_safe."""
        return "\n".join(terminal_safe(line) for line in self._lines())

    def _lines(self) -> list[str]:
        if self.empty:
            return ["no tool changes"]
        lines: list[str] = []
        for name in self.added:
            lines.append(f"+ added    {name}")
        for name in self.removed:
            note = " (its curated fields were dropped)" if name in self.dropped_curation else ""
            lines.append(f"- removed  {name}{note}")
        for change in self.changed:
            parts = [
                p
                for p, v in (
                    ("description", change.description),
                    ("title", change.title),
                    ("annotations", change.annotations),
                )
                if v is not None
            ]
            if change.schema_paths:
                parts.append("input schema")
            lines.append(f"~ changed  {change.name}: {', '.join(parts)}")
            if change.curated_kept:
                lines.append(
                    f"    ! curated {', '.join(change.curated_kept)} kept; review it against the new text"
                )
            if change.title is not None:
                lines.append(f"    title: {change.title[0]!r} -> {change.title[1]!r}")
            if change.description is not None:
                lines.extend("    " + d for d in _text_diff(*change.description))
            lines.extend(f"    schema {p}" for p in change.schema_paths)
            if change.annotations is not None:
                lines.append(f"    annotations: {change.annotations[0]} -> {change.annotations[1]}")
            if change.definition_hash is not None:
                lines.append(
                    f"    definition_hash: {change.definition_hash[0]} -> {change.definition_hash[1]}"
                )
        return lines


def _text_diff(old: str, new: str) -> list[str]:
    diff = difflib.unified_diff(_wrap(old), _wrap(new), lineterm="", n=1)
    return [line for line in diff if not line.startswith(("---", "+++", "@@"))]


def _wrap(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(" ".join(text.split()), 90) or [""]


def diff_tools(old: dict[str, Any], new: dict[str, Any]) -> RegistryDiff:
    """Compare the tools of two registry documents by name."""
    before = {t["name"]: t for t in old.get("tools", []) if isinstance(t, dict) and "name" in t}
    after = {t["name"]: t for t in new.get("tools", []) if isinstance(t, dict) and "name" in t}
    result = RegistryDiff()
    result.added = [n for n in after if n not in before]
    result.removed = [n for n in before if n not in after]
    result.dropped_curation = [n for n in result.removed if any(k in before[n] for k in TOOL_CURATED_KEYS)]
    for name, new_tool in after.items():
        old_tool = before.get(name)
        if old_tool is None:
            continue
        change = ToolChange(name)
        if (old_tool.get("description") or "") != (new_tool.get("description") or ""):
            change.description = (old_tool.get("description") or "", new_tool.get("description") or "")
        if old_tool.get("title") != new_tool.get("title"):
            change.title = (str(old_tool.get("title")), str(new_tool.get("title")))
        change.schema_paths = schema_changes(
            old_tool.get("input_schema") or {}, new_tool.get("input_schema") or {}
        )
        if (old_tool.get("annotations") or {}) != (new_tool.get("annotations") or {}):
            change.annotations = (
                _compact(old_tool.get("annotations") or {}),
                _compact(new_tool.get("annotations") or {}),
            )
        if change.description or change.title or change.schema_paths or change.annotations:
            change.curated_kept = [k for k in TOOL_CURATED_KEYS if k in old_tool]
            old_hash, new_hash = old_tool.get("definition_hash"), new_tool.get("definition_hash")
            if old_hash != new_hash:
                change.definition_hash = (str(old_hash or "(none)"), str(new_hash or "(none)"))
            result.changed.append(change)
    return result


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True)[:200]


def schema_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths that were added (+), removed (-) or changed (~) between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"+ {sub}: {_compact(new[key])}")
            elif key not in new:
                out.append(f"- {sub}")
            else:
                out.extend(schema_changes(old[key], new[key], sub))
        return out
    if old != new:
        return [f"~ {path or '(root)'}: {_compact(old)} -> {_compact(new)}"]
    return []
