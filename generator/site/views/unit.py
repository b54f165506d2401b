"""A unit of work: everything one server produces (its tool pages, its server page, its policy file)."""

from __future__ import annotations

from generator.catalog.policyfile import render_policy_file
from generator.site import urls
from generator.site.views.context import SiteContext
from generator.site.views.server import server_page
from generator.site.views.tool import tool_page


def render_unit(ctx: SiteContext, slug: str) -> list[tuple[str, bytes]]:
    """Everything one server produces: its tool pages, its page and its policy file."""
    server = ctx.catalog.load_server(slug)
    server_ref = ctx.catalog.server(slug)
    out: list[tuple[str, bytes]] = []
    for tool in server.tools:
        url = urls.tool_url(slug, tool.name)
        out.append((urls.output_path(url), tool_page(ctx, server, server_ref, tool)))
    policy_text = render_policy_file(server)
    out.append((urls.output_path(urls.server_url(slug)), server_page(ctx, server, server_ref, policy_text)))
    out.append((urls.policy_url(slug)[1:], policy_text.encode("utf-8")))
    return out
