"""A server's tool-definition history: one compact entry per scan that changed something.

The registry file keeps `history:` newest last. A scan appends an entry when a tool was added, removed
or changed, or when the server reports another version; each entry names the tools and, for a changed
tool, the fields that changed. The tools' current definitions (and their hashes) are in the file, so
the history needs no copies of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFINITION_FIELDS = ("title", "description", "input_schema", "output_schema", "annotations")
"""What a scan records of a tool, in the order a changelog names them."""

_EMPTY: dict[str, Any] = {"description": "", "input_schema": {"type": "object"}, "annotations": {}}
"""How an absent field compares: as the registry models default it."""


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The definition fields that differ between two versions of one tool."""
    return [f for f in DEFINITION_FIELDS if old.get(f, _EMPTY.get(f)) != new.get(f, _EMPTY.get(f))]


def history_entry(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The entry a scan adds, or None when it changed no tool and the server's version is the same.

    `old` is the registry document before the scan (None for a first scan), `new` the one after.
    """
    provenance = new.get("provenance") or {}
    entry: dict[str, Any] = {"obtained_at": provenance.get("obtained_at")}
    if provenance.get("server_version") is not None:
        entry["server_version"] = provenance["server_version"]
    after = _tools(new)
    entry["tools"] = len(after)
    if old is None:
        return entry
    before = _tools(old)
    added = [name for name in after if name not in before]
    removed = [name for name in before if name not in after]
    changed = {
        name: fields
        for name, tool in after.items()
        if name in before and (fields := changed_fields(before[name], tool))
    }
    old_version = (old.get("provenance") or {}).get("server_version")
    if not (added or removed or changed) and old_version == provenance.get("server_version"):
        return None
    if added:
        entry["added"] = added
    if removed:
        entry["removed"] = removed
    if changed:
        entry["changed"] = changed
    return entry


def next_history(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The history to write after a scan: the old one, plus this scan's entry if it changed anything.

    A file scanned before histories were kept starts with an entry for its previous scan."""
    history = [dict(e) for e in (old or {}).get("history") or [] if isinstance(e, Mapping)]
    if old is not None and not history:
        baseline = history_entry(None, old)
        if baseline is not None and baseline.get("obtained_at") is not None:
            history.append(baseline)
    entry = history_entry(old, new)
    if entry is not None:
        history.append(entry)
    return history


def _tools(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    tools = document.get("tools") or []
    return {t["name"]: t for t in tools if isinstance(t, Mapping) and isinstance(t.get("name"), str)}
