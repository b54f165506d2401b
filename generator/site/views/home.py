"""The home page: tool counts by category and risk, and the largest servers."""

from __future__ import annotations

from generator.catalog.models import CATEGORY_ORDER, RISK_ORDER
from generator.catalog.recommend import PATTERNS
from generator.site import urls
from generator.site.views.context import SITE_NAME, SiteContext, bar_segments, plural, server_rows

HOME_SERVER_LIMIT = 60


def home_page(ctx: SiteContext) -> bytes:
    catalog = ctx.catalog
    cats, risks = catalog.distribution()
    total = catalog.tool_count
    page = ctx.page(
        "/",
        f"{SITE_NAME}: tools, risks and policies for MCP servers",
        f"{plural(total, 'tool')} from {plural(len(catalog.servers), 'MCP server')}, each with its "
        "risk level and a recommended policy that Intercept enforces.",
        [("Home", "/")],
    )
    biggest = sorted(catalog.servers, key=lambda s: (-s.tool_count, s.slug))[:HOME_SERVER_LIMIT]
    return ctx.render(
        "home.html",
        page=page,
        total=total,
        server_count=len(catalog.servers),
        servers=server_rows(ctx, sorted(biggest, key=lambda s: s.name.lower())),
        all_servers=len(catalog.servers) <= HOME_SERVER_LIMIT,
        cats=cats,
        risks=risks,
        cat_bar=bar_segments(cats, total),
        risk_bar=bar_segments(risks, total),
        category_urls={c.value: ctx.link(urls.category_url(c)) for c in CATEGORY_ORDER},
        risk_urls={r.value: ctx.link(urls.risk_url(r)) for r in RISK_ORDER},
        patterns={c.value: PATTERNS[c] for c in CATEGORY_ORDER},
        servers_url=ctx.link(urls.servers_url()),
        search_url=ctx.link(urls.search_url()),
    )
