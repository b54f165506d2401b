"""registry.json: every server and tool with its category, risk and recommended rules.

Each server's entry is serialised once, when the parse cache reads its file (`catalogue_entry`);
building the file joins the stored entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from generator.catalog.models import Server
from generator.catalog.recommend import recommend
from generator.site import urls


class _StoredEntry(Protocol):
    @property
    def catalogue_json(self) -> str: ...


class CatalogueEntries(Protocol):
    """What registry.json needs of the parse cache's catalogue (here, so neither imports the other)."""

    @property
    def tool_count(self) -> int: ...

    @property
    def servers(self) -> Sequence[_StoredEntry]: ...


def catalogue_entry(server: Server) -> dict[str, Any]:
    tools = []
    for tool in sorted(server.tools, key=lambda t: t.name):
        rec = recommend(tool)
        entry: dict[str, Any] = {
            "name": tool.name,
            "url": urls.tool_url(server.slug, tool.name),
            "summary": tool.one_line,
            "category": tool.category.value,
            "reviewed": tool.reviewed,
            "risk": rec.risk.value,
            "pattern": rec.pattern,
            "required_params": tool.required_params,
            "rules": [
                r.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
                for r in rec.rules
            ],
        }
        if tool.definition_hash:
            entry["definition_hash"] = tool.definition_hash
        if tool.hint_conflict is not None:
            entry["hint_conflict"] = tool.hint_conflict.model_dump(mode="json")
        tools.append(entry)
    return {
        "slug": server.slug,
        "name": server.name,
        "url": urls.server_url(server.slug),
        "policy_url": urls.policy_url(server.slug),
        "repository": server.repository,
        "homepage": server.homepage,
        "status": server.status,
        "run": {
            "package_manager": server.run.package_manager,
            "package": server.run.package,
            "version": server.run.version,
            "transport": server.run.transport,
            "command": server.run.command(),
        },
        "tool_count": len(server.tools),
        "tools": tools,
    }


def registry_json_chunks(catalog: CatalogueEntries, absolute: str) -> Iterable[str]:
    yield (
        '{"format":1,"site":'
        + json.dumps(absolute)
        + ',"tool_count":'
        + str(catalog.tool_count)
        + ',"server_count":'
        + str(len(catalog.servers))
        + ',"servers":['
    )
    for i, server in enumerate(catalog.servers):
        yield ("," if i else "") + server.catalogue_json
    yield "]}\n"
