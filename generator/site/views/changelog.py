"""A server page's changelog: its registry history as rows to show, newest first."""

from __future__ import annotations

from typing import Any

from generator.catalog.models import Server
from generator.site import urls
from generator.site.views.context import SiteContext


def changelog_rows(ctx: SiteContext, server: Server) -> list[dict[str, Any]]:
    """One row per history entry; tools the server still has link to their pages."""
    current = {t.name for t in server.tools}

    def ref(name: str) -> dict[str, Any]:
        link = ctx.link(urls.tool_url(server.slug, name)) if name in current else None
        return {"name": name, "url": link}

    rows = []
    for index, entry in enumerate(server.history):
        rows.append(
            {
                "date": entry.obtained_at.date().isoformat(),
                "version": entry.server_version,
                "tools": entry.tools,
                "first": index == 0,
                "added": [ref(n) for n in entry.added],
                "removed": [{"name": n, "url": None} for n in entry.removed],
                "changed": [
                    {**ref(n), "fields": [f.replace("_", " ") for f in fields]}
                    for n, fields in entry.changed.items()
                ],
            }
        )
    return rows[::-1]
