"""Pages that show no registry data: search, the policy language reference, and the 404 page."""

from __future__ import annotations

from generator.catalog.recommend import EXECUTE_LIMIT, WRITE_LIMIT
from generator.site import policy_reference, urls
from generator.site.views.context import SiteContext


def simple_page(ctx: SiteContext, template: str, path: str, title: str, description: str) -> bytes:
    page = ctx.page(path, title, description, [("Home", "/"), (title, path)])
    return ctx.render(
        template,
        page=page,
        write_limit=WRITE_LIMIT,
        execute_limit=EXECUTE_LIMIT,
        sections=policy_reference.sections(),
        operators=policy_reference.operators(),
    )


def not_found_page(ctx: SiteContext) -> bytes:
    page = ctx.page("/404.html", "Page not found", "This page does not exist.", [("Home", "/")])
    page.canonical = None
    return ctx.render("404.html", page=page, servers_url=ctx.link(urls.servers_url()))
