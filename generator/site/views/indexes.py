"""Index pages: all servers A to Z, and the category and risk level overviews."""

from __future__ import annotations

from collections.abc import Iterator

from generator.catalog.models import CATEGORY_ORDER, RISK_ORDER
from generator.catalog.recommend import PATTERNS
from generator.site import urls
from generator.site.parsecache import HINTS
from generator.site.views.context import CATEGORY_BLURB, RISK_BLURB, SiteContext, plural, server_rows


def servers_pages(ctx: SiteContext) -> Iterator[tuple[str, bytes]]:
    """The server index, A to Z, in pages of SERVERS_PAGE_SIZE."""
    servers = sorted(ctx.catalog.servers, key=lambda s: (s.name.lower(), s.slug))
    count = urls.page_count(len(servers), urls.SERVERS_PAGE_SIZE)
    for number in range(1, count + 1):
        path = urls.servers_url(number)
        crumbs = [("Home", "/"), ("Servers", urls.servers_url())]
        if number > 1:
            crumbs.append((f"Page {number}", path))
        title = "All MCP servers" + (f", page {number} of {count}" if number > 1 else "")
        page = ctx.page(
            path,
            title,
            f"{plural(len(servers), 'MCP server')} with their tools and recommended policies.",
            crumbs,
        )
        start = (number - 1) * urls.SERVERS_PAGE_SIZE
        rows = server_rows(ctx, servers[start : start + urls.SERVERS_PAGE_SIZE])
        yield (
            urls.output_path(path),
            ctx.render(
                "servers.html",
                page=page,
                heading=title,
                servers=rows,
                total=len(servers),
                categories=[c.value for c in CATEGORY_ORDER],
                risks=[r.value for r in RISK_ORDER],
                hints=HINTS,
                number=number,
                pages=count,
                prev_url=ctx.link(urls.servers_url(number - 1)) if number > 1 else None,
                next_url=ctx.link(urls.servers_url(number + 1)) if number < count else None,
            ),
        )


def index_page(ctx: SiteContext, kind: str) -> bytes:
    cats, risks = ctx.catalog.distribution()
    if kind == "category":
        path, title = urls.categories_url(), "Tool categories"
        rows = [
            {
                "name": c.value,
                "count": cats[c.value],
                "blurb": CATEGORY_BLURB[c],
                "pattern": PATTERNS[c],
                "url": ctx.link(urls.category_url(c)),
            }
            for c in CATEGORY_ORDER
        ]
    else:
        path, title = urls.risks_url(), "Risk levels"
        rows = [
            {
                "name": r.value,
                "count": risks[r.value],
                "blurb": RISK_BLURB[r],
                "pattern": "",
                "url": ctx.link(urls.risk_url(r)),
            }
            for r in RISK_ORDER
        ]
    page = ctx.page(
        path,
        title,
        f"MCP tools by {'category' if kind == 'category' else 'risk level'}.",
        [("Home", "/"), (title, path)],
    )
    return ctx.render("index.html", page=page, heading=title, rows=rows, kind=kind)
