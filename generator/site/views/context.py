"""What every page shares: the site context, page metadata, and pieces several pages show.

Everything shown comes from the registry (untrusted) or from `recommend()`; templates autoescape,
descriptions go through the safe Markdown renderer, and every URL comes from `generator.site.urls`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from generator.catalog.models import Category, Risk
from generator.catalog.risk import MEANING
from generator.site import urls
from generator.site.jsonld import breadcrumb_list, graph
from generator.site.parsecache import Catalog, ServerRef, ToolRef
from generator.site.render import inline_markdown, json_ld, plain_text
from generator.site.similar import SimilarIndex
from generator.site.usage import DEFAULT_INSTALL_COMMAND

SITE_NAME = "Intercept MCP Tool Reference"


CATEGORY_BLURB: dict[Category, str] = {
    Category.READ: "Tools that look things up and change nothing.",
    Category.WRITE: "Tools that create or change data.",
    Category.EXECUTE: "Tools that start, stop or control work: runs, jobs, deployments.",
    Category.DESTRUCTIVE: "Tools that delete or irreversibly change data or resources.",
    Category.FINANCIAL: "Tools that move money: charges, payments, refunds, transfers.",
}


RISK_BLURB: dict[Risk, str] = MEANING


@dataclass(slots=True)
class PageMeta:
    """What base.html shows of every page. Attributes, not a dict: Jinja reads them directly."""

    path: str
    title: str
    description: str
    canonical: str | None
    crumbs: list[tuple[str, str]]
    json_ld: Markup
    og_type: str
    site_name: str
    base: str
    search: bool
    search_merge: str


@dataclass
class SiteContext:
    env: Environment
    catalog: Catalog
    similar: SimilarIndex
    absolute: str
    """The base URL without a trailing slash, for canonical URLs."""
    base_path: str
    """The base URL's path without a trailing slash ('' at a domain root), prefixed to every link."""
    search: bool
    search_merge: tuple[str, ...] = ()
    install_command: str = DEFAULT_INSTALL_COMMAND
    """The command the "Use it" block tells readers to install Intercept with."""
    """Search bundles under pagefind/ that the search box merges into the primary one."""
    item_cache: dict[tuple[str, str, bool | str], str] = field(default_factory=dict)
    """Rendered list items, by tool: a tool appears in many pages' similar and browse lists."""

    def link(self, path: str) -> str:
        return self.base_path + path

    def page(
        self,
        path: str,
        title: str,
        description: str,
        crumbs: Sequence[tuple[str, str]],
        *extra_ld: dict[str, Any],
        og_type: str = "website",
    ) -> PageMeta:
        ld = graph(breadcrumb_list(crumbs, self.absolute), *extra_ld)
        return PageMeta(
            path=path,
            title=title,
            description=clip(plain_text(description), 200),
            canonical=self.absolute + path,
            crumbs=[(name, self.link(p)) for name, p in crumbs],
            json_ld=json_ld(ld),
            og_type=og_type,
            site_name=SITE_NAME,
            base=self.base_path,
            search=self.search,
            search_merge=" ".join(self.search_merge),
        )

    def render(self, template: str, **context: Any) -> bytes:
        return self.env.get_template(template).render(**context).encode("utf-8")


def clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


ITEM_CACHE_LIMIT = 100_000


def _cached_items(
    ctx: SiteContext, refs: Iterable[ToolRef], variant: bool | str, render: Callable[[ToolRef], str]
) -> str:
    """Each tool's fragment rendered once per process and reused: a tool appears in many lists."""
    cache = ctx.item_cache
    parts = []
    for ref in refs:
        key = (ref.slug, ref.name, variant)
        item = cache.get(key)
        if item is None:
            item = render(ref)
            if len(cache) >= ITEM_CACHE_LIMIT:
                cache.clear()
            cache[key] = item
        parts.append(item)
    return "".join(parts)


def tool_items(ctx: SiteContext, refs: Iterable[ToolRef], show_server: bool = True) -> Markup:
    """A list of tools as HTML."""

    def item(ref: ToolRef) -> str:
        url = escape(ctx.link(urls.tool_url(ref.slug, ref.name)))
        where = ""
        if show_server:
            where = (
                f' <span class="muted">on <a href="{escape(ctx.link(urls.server_url(ref.slug)))}">'
                f"{escape(ref.server_name)}</a></span>"
            )
        return (
            f'  <li>\n    <a class="tool-name" href="{url}"><code>{escape(ref.name)}</code></a>\n'
            f'    <span class="badge risk-{ref.risk.value}">{ref.risk.value} risk</span>{where}\n'
            f"    <p>{inline_markdown(ref.one_line)}</p>\n  </li>\n"
        )

    return Markup('<ul class="tool-list">\n' + _cached_items(ctx, refs, show_server, item) + "</ul>\n")


def tool_table(ctx: SiteContext, refs: Iterable[ToolRef], kind: str) -> Markup:
    """A browse page's tools as table rows.

    kind: 'category' or 'risk', the listing's own dimension, so the row shows the other one.
    """

    def row(ref: ToolRef) -> str:
        url = escape(ctx.link(urls.tool_url(ref.slug, ref.name)))
        name = f'<a class="tool-name" href="{url}"><code>{escape(ref.name)}</code></a>'
        server = escape(ctx.link(urls.server_url(ref.slug)))
        if kind == "category":
            other = f'<span class="badge risk-{ref.risk.value}">{ref.risk.value}</span>'
        else:
            other = escape(ref.category.value)
        return (
            f'<tr><th scope="row">{name}</th>'
            f'<td><a href="{server}">{escape(ref.server_name)}</a></td><td>{other}</td>'
            f"<td>{inline_markdown(ref.one_line)}</td></tr>\n"
        )

    return Markup(_cached_items(ctx, refs, kind, row))


def bar_segments(counts: dict[str, int], total: int, width: int = 300) -> list[dict[str, Any]]:
    """Widths for an inline SVG stacked bar; integer arithmetic so output is deterministic."""
    segments = []
    x = 0
    items = [(k, v) for k, v in counts.items() if v]
    for i, (key, value) in enumerate(items):
        w = width - x if i == len(items) - 1 else (value * width) // max(total, 1)
        segments.append({"key": key, "count": value, "x": x, "width": w})
        x += w
    return segments


def server_rows(ctx: SiteContext, servers: Iterable[ServerRef]) -> list[dict[str, Any]]:
    """What a server table shows of each server, and what the server index's filters match."""
    return [
        {
            "name": s.name,
            "url": ctx.link(urls.server_url(s.slug)),
            "summary": inline_markdown(s.summary),
            "tools": s.tool_count,
            "slug": s.slug,
            "status": s.status,
            "categories": s.categories,
            "risks": s.risks,
            "top_risk": s.risks[-1] if s.risks else "",
            "hints": s.hints,
        }
        for s in servers
    ]
