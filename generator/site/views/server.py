"""Server pages: a server's tools by category and risk, how to run it, and its recommended policy."""

from __future__ import annotations

import shlex

from markupsafe import Markup

from generator.catalog.models import CATEGORY_ORDER, Server
from generator.catalog.policyfile import policy_file_name
from generator.catalog.recommend import PATTERNS
from generator.site import urls
from generator.site.faq import block_summary, server_faq
from generator.site.jsonld import faq_page
from generator.site.parsecache import ServerRef
from generator.site.render import (
    highlight_code,
    highlight_yaml_document,
    markdown_html,
    safe_link,
)
from generator.site.views.changelog import changelog_rows
from generator.site.views.context import SiteContext, bar_segments, plural, tool_items
from generator.site.views.use import use_it


def server_page(ctx: SiteContext, server: Server, server_ref: ServerRef, policy_text: str) -> bytes:
    file_name = policy_file_name(server)
    path = urls.server_url(server.slug)
    faq = server_faq(server, file_name)
    crumbs = [("Home", "/"), ("Servers", urls.servers_url()), (server.name, path)]
    summary = server_ref.summary or f"The {server.name} MCP server."
    page = ctx.page(
        path,
        f"{server.name} MCP server: {len(server.tools)} tools and a recommended policy",
        f"{summary} {plural(len(server.tools), 'tool')}, by category and risk, with the "
        "recommended Intercept policy.",
        crumbs,
        faq_page(faq),
    )
    total = len(server.tools)
    cat_counts = {c.value: n for c, n in server_ref.category_counts.items()}
    risk_counts = {r.value: n for r, n in server_ref.risk_counts.items()}
    groups = []
    for category in CATEGORY_ORDER:
        members = [t for t in server_ref.tools if t.category is category]
        if members:
            groups.append(
                {
                    "category": category.value,
                    "pattern": PATTERNS[category],
                    "count": len(members),
                    "tools": tool_items(ctx, members, show_server=False),
                }
            )
    command = shlex.join(server.run.command())
    return ctx.render(
        "server.html",
        page=page,
        server=server,
        description_html=markdown_html(server.description) if server.description else Markup(""),
        repository=server.repository if server.repository and safe_link(server.repository) else None,
        homepage=server.homepage if server.homepage and safe_link(server.homepage) else None,
        total=total,
        cat_counts=cat_counts,
        risk_counts=risk_counts,
        cat_bar=bar_segments(cat_counts, total),
        risk_bar=bar_segments(risk_counts, total),
        groups=groups,
        command=command,
        command_html=highlight_code(command + "\n", "bash"),
        policy_text=policy_text,
        policy_html=highlight_yaml_document(policy_text),
        file_name=file_name,
        policy_url=ctx.link(urls.policy_url(server.slug)),
        block_summary=block_summary(server),
        strict_url=ctx.link(urls.strict_policy_url(server.slug)),
        use=use_it(ctx, server),
        about_url=ctx.link(urls.about_url()),
        category_urls={c.value: ctx.link(urls.category_url(c)) for c in CATEGORY_ORDER},
        faq=list(faq),
        provenance=server.provenance,
        changelog=changelog_rows(ctx, server),
    )
