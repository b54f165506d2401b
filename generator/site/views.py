"""What each page shows: builds template contexts from registry data and renders them to bytes.

Everything shown comes from the registry (untrusted) or from `recommend()`; templates autoescape,
descriptions go through the safe Markdown renderer, and every URL comes from `generator.site.urls`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from jinja2 import Environment
from markupsafe import Markup, escape

from generator.catalog.models import CATEGORY_ORDER, RISK_ORDER, Category, Risk, Server, Tool
from generator.catalog.policyfile import policy_file_name, render_policy_file, tool_snippet
from generator.catalog.recommend import EXECUTE_LIMIT, PATTERNS, WRITE_LIMIT, Recommendation, recommend
from generator.site import urls as pages
from generator.site.faq import QA, server_faq, tool_faq, usage_text, why_text
from generator.site.jsonld import breadcrumb_list, faq_page, graph
from generator.site.parsecache import Catalog, ServerRef, ToolRef
from generator.site.render import (
    highlight_code,
    highlight_snippet,
    highlight_yaml_document,
    json_ld,
    markdown_html,
    safe_link,
)
from generator.site.similar import SimilarIndex

SITE_NAME = "Intercept MCP Tool Reference"
MORE_TOOLS_LIMIT = 8

CATEGORY_BLURB: dict[Category, str] = {
    Category.READ: "Tools that look things up and change nothing.",
    Category.WRITE: "Tools that create or change data.",
    Category.EXECUTE: "Tools that start, stop or control work: runs, jobs, deployments.",
    Category.DESTRUCTIVE: "Tools that delete or irreversibly change data or resources.",
    Category.FINANCIAL: "Tools that move money: charges, payments, refunds, transfers.",
}

RISK_BLURB: dict[Risk, str] = {
    Risk.LOW: "Reads only; the worst case is data exposure or quota use.",
    Risk.MEDIUM: "Changes state; one call does limited harm, a loop does more.",
    Risk.HIGH: "Starts or stops real work; repeated calls add up quickly.",
    Risk.CRITICAL: "One call can destroy data or move money.",
}


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


class ParamRow(NamedTuple):
    name: str
    type: str
    required: bool
    description: str
    notes: str


class EvidenceRow(NamedTuple):
    signal: str
    category: str
    weight: str
    detail: str


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
    """Search bundles under pagefind/ that the search box merges into the primary one."""
    item_cache: dict[tuple[str, str, bool], str] = field(default_factory=dict)
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
            description=_clip(description, 200),
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


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


# --------------------------------------------------------------------------------------------
# Tool pages


def schema_type(prop: Any) -> str:
    if not isinstance(prop, dict):
        return "any"
    kind = prop.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array":
        items = prop.get("items")
        return f"array of {schema_type(items)}" if isinstance(items, dict) else "array"
    if isinstance(kind, str):
        return kind
    for combiner in ("anyOf", "oneOf"):
        options = prop.get(combiner)
        if isinstance(options, list):
            return " | ".join(schema_type(o) for o in options)
    if "enum" in prop:
        return "enum"
    return "any"


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def parameters(tool: Tool) -> list[ParamRow]:
    props = tool.input_schema.get("properties")
    if not isinstance(props, dict):
        return []
    required = set(tool.required_params)
    rows = []
    for name, prop in props.items():
        spec = prop if isinstance(prop, dict) else {}
        notes = []
        if isinstance(spec.get("enum"), list):
            notes.append("one of: " + ", ".join(_value_text(v) for v in spec["enum"][:20]))
        if "default" in spec:
            notes.append("default: " + _value_text(spec["default"]))
        description = spec.get("description")
        rows.append(
            ParamRow(
                str(name),
                schema_type(spec),
                name in required,
                _clip(description, 600) if isinstance(description, str) else "",
                "; ".join(notes),
            )
        )
    rows.sort(key=lambda r: (not r.required, r.name))
    return rows


ITEM_CACHE_LIMIT = 100_000


def tool_items(ctx: SiteContext, refs: Iterable[ToolRef], show_server: bool = True) -> Markup:
    """A list of tools as HTML; each item is rendered once per process and reused."""
    cache = ctx.item_cache
    parts = ['<ul class="tool-list">\n']
    for ref in refs:
        key = (ref.slug, ref.name, show_server)
        item = cache.get(key)
        if item is None:
            url = escape(ctx.link(pages.tool_url(ref.slug, ref.name)))
            where = ""
            if show_server:
                where = (
                    f' <span class="muted">on <a href="{escape(ctx.link(pages.server_url(ref.slug)))}">'
                    f"{escape(ref.server_name)}</a></span>"
                )
            item = (
                f'  <li>\n    <a class="tool-name" href="{url}"><code>{escape(ref.name)}</code></a>\n'
                f'    <span class="badge risk-{ref.risk.value}">{ref.risk.value} risk</span>{where}\n'
                f"    <p>{escape(ref.one_line)}</p>\n  </li>\n"
            )
            if len(cache) >= ITEM_CACHE_LIMIT:
                cache.clear()
            cache[key] = item
        parts.append(item)
    parts.append("</ul>\n")
    return Markup("".join(parts))


def _more_tools(server_ref: ServerRef, tool: Tool) -> list[ToolRef]:
    same = [t for t in server_ref.tools if t.category is tool.category and t.name != tool.name]
    other = [t for t in server_ref.tools if t.category is not tool.category]
    return (same + other)[:MORE_TOOLS_LIMIT]


def _faq_items(items: Iterable[QA]) -> list[QA]:
    return list(items)


def tool_page(ctx: SiteContext, server: Server, server_ref: ServerRef, tool: Tool) -> bytes:
    rec: Recommendation = recommend(tool)
    file_name = policy_file_name(server)
    path = pages.tool_url(server.slug, tool.name)
    faq = tool_faq(tool, server, rec, file_name)
    crumbs = [
        ("Home", "/"),
        ("Servers", pages.servers_url()),
        (server.name, pages.server_url(server.slug)),
        (tool.name, path),
    ]
    snippet = tool_snippet(tool)
    page = ctx.page(
        path,
        f"{tool.name}: {server.name} MCP tool policy",
        f"{tool.one_line} Part of the "
        f"{server.name} MCP server. Risk: {rec.risk.value}. Recommended policy: {rec.pattern}.",
        crumbs,
        faq_page(faq),
        og_type="article",
    )
    more = _more_tools(server_ref, tool)
    similar = ctx.similar.for_tool(server.slug, tool.name, tool.category)
    evidence = [EvidenceRow(e.signal, e.category.value, f"{e.weight:g}", e.detail) for e in tool.evidence]
    return ctx.render(
        "tool.html",
        page=page,
        tool=tool,
        server=server,
        rec=rec,
        risk=rec.risk.value,
        category=rec.category.value,
        usage=usage_text(tool, server, rec),
        why=why_text(tool, server, rec),
        snippet=snippet,
        snippet_html=highlight_snippet(snippet, tool.name),
        file_name=file_name,
        policy_url=ctx.link(pages.policy_url(server.slug)),
        server_url=ctx.link(pages.server_url(server.slug)),
        tool_count=len(server.tools),
        description_html=markdown_html(tool.description) if tool.description else Markup(""),
        params=parameters(tool),
        annotations=[(str(k), _value_text(v)) for k, v in sorted(tool.annotations.items())],
        evidence=evidence,
        category_reason=tool.category_reason,
        more=tool_items(ctx, more, show_server=False) if more else None,
        similar=tool_items(ctx, similar) if similar else None,
        category_url=ctx.link(pages.category_url(rec.category)),
        risk_url=ctx.link(pages.risk_url(rec.risk)),
        reference_url=ctx.link(pages.policy_reference_url()),
        faq=_faq_items(faq),
    )


# --------------------------------------------------------------------------------------------
# Server pages


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


def mcp_config(server: Server, file_name: str) -> str:
    if server.run.transport == "stdio":
        args = ["run", "-c", f"policies/{file_name}", "--", *server.run.command()]
    else:
        args = [
            "run",
            "-c",
            f"policies/{file_name}",
            "--upstream",
            server.run.url or "https://<server-url>/mcp",
        ]
    entry: dict[str, Any] = {"command": "intercept", "args": args}
    if server.run.env:
        entry["env"] = dict(sorted(server.run.env.items()))
    return json.dumps({"mcpServers": {server.slug: entry}}, indent=2, ensure_ascii=False) + "\n"


def server_page(ctx: SiteContext, server: Server, server_ref: ServerRef, policy_text: str) -> bytes:
    file_name = policy_file_name(server)
    path = pages.server_url(server.slug)
    recs = {t.name: recommend(t) for t in server.tools}
    denied = sum(1 for r in recs.values() if r.denied)
    limited = sum(1 for r in recs.values() if r.rate_limit is not None)
    faq = server_faq(server, file_name, denied, limited)
    crumbs = [("Home", "/"), ("Servers", pages.servers_url()), (server.name, path)]
    summary = server_ref.summary or f"The {server.name} MCP server."
    page = ctx.page(
        path,
        f"{server.name} MCP server: {len(server.tools)} tools and a recommended policy",
        f"{summary} {_plural(len(server.tools), 'tool')}, by category and risk, with the "
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
    config = mcp_config(server, file_name)
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
        env_names=sorted(server.run.env),
        policy_text=policy_text,
        policy_html=highlight_yaml_document(policy_text),
        file_name=file_name,
        policy_url=ctx.link(pages.policy_url(server.slug)),
        config=config,
        config_html=highlight_code(config, "json"),
        denied=denied,
        limited=limited,
        category_urls={c.value: ctx.link(pages.category_url(c)) for c in CATEGORY_ORDER},
        faq=_faq_items(faq),
        provenance=server.provenance,
    )


def render_unit(ctx: SiteContext, slug: str) -> list[tuple[str, bytes]]:
    """Everything one server produces: its tool pages, its page and its policy file."""
    server = ctx.catalog.load_server(slug)
    server_ref = ctx.catalog.server(slug)
    out: list[tuple[str, bytes]] = []
    for tool in server.tools:
        url = pages.tool_url(slug, tool.name)
        out.append((pages.output_path(url), tool_page(ctx, server, server_ref, tool)))
    policy_text = render_policy_file(server)
    out.append((pages.output_path(pages.server_url(slug)), server_page(ctx, server, server_ref, policy_text)))
    out.append((pages.policy_url(slug)[1:], policy_text.encode("utf-8")))
    return out


# --------------------------------------------------------------------------------------------
# Browse, home and other site-wide pages


@dataclass(frozen=True, slots=True)
class Listing:
    kind: str
    """'category' or 'risk'."""
    value: Category | Risk
    tools: list[ToolRef]
    patterns: tuple[str, ...] = ()
    """The recommended patterns of the listed tools, sorted."""

    def url(self, number: int = 1) -> str:
        if isinstance(self.value, Category):
            return pages.category_url(self.value, number)
        return pages.risk_url(self.value, number)

    @property
    def pages(self) -> int:
        return pages.page_count(len(self.tools))


def listings(catalog: Catalog) -> list[Listing]:
    tools = sorted(catalog.tools(), key=lambda t: (t.name, t.slug))
    by_cat: dict[Category, list[ToolRef]] = {c: [] for c in CATEGORY_ORDER}
    by_risk: dict[Risk, list[ToolRef]] = {r: [] for r in RISK_ORDER}
    for tool in tools:
        by_cat[tool.category].append(tool)
        by_risk[tool.risk].append(tool)
    return [Listing("category", c, by_cat[c], (PATTERNS[c],)) for c in CATEGORY_ORDER] + [
        Listing("risk", r, by_risk[r], tuple(sorted({PATTERNS[t.category] for t in by_risk[r]})))
        for r in RISK_ORDER
    ]


def listing_header(listing: Listing) -> str:
    """What every page of a listing shows about the whole listing: its size and patterns."""
    return f"{len(listing.tools)}\0{'|'.join(listing.patterns)}"


def listing_urls(catalog: Catalog) -> Iterator[str]:
    """Every browse page's URL, in the order of `listings`, from tool counts alone."""
    cats, risks = _distribution(catalog)
    for category in CATEGORY_ORDER:
        for number in range(1, pages.page_count(cats[category.value]) + 1):
            yield pages.category_url(category, number)
    for risk in RISK_ORDER:
        for number in range(1, pages.page_count(risks[risk.value]) + 1):
            yield pages.risk_url(risk, number)


def listing_items(listing: Listing, number: int) -> list[ToolRef]:
    start = (number - 1) * pages.PAGE_SIZE
    return listing.tools[start : start + pages.PAGE_SIZE]


def listing_page(ctx: SiteContext, listing: Listing, number: int) -> bytes:
    value = listing.value.value
    is_cat = isinstance(listing.value, Category)
    label = f"{value.capitalize()} tools" if is_cat else f"{value.capitalize()}-risk tools"
    path = listing.url(number)
    parent = ("Categories", pages.categories_url()) if is_cat else ("Risk levels", pages.risks_url())
    crumbs = [("Home", "/"), parent, (label, listing.url())]
    if number > 1:
        crumbs.append((f"Page {number}", path))
    blurb = (
        CATEGORY_BLURB[listing.value] if isinstance(listing.value, Category) else RISK_BLURB[listing.value]
    )
    patterns = list(listing.patterns)
    title = label + (f", page {number} of {listing.pages}" if number > 1 else "")
    page = ctx.page(
        path, f"{title}: MCP tool reference", f"{_plural(len(listing.tools), 'MCP tool')}. {blurb}", crumbs
    )
    prev_url = ctx.link(listing.url(number - 1)) if number > 1 else None
    next_url = ctx.link(listing.url(number + 1)) if number < listing.pages else None
    return ctx.render(
        "listing.html",
        page=page,
        heading=title,
        label=label,
        blurb=blurb,
        kind=listing.kind,
        value=value,
        count=len(listing.tools),
        patterns=patterns,
        tools=tool_items(ctx, listing_items(listing, number)),
        number=number,
        pages=listing.pages,
        prev_url=prev_url,
        next_url=next_url,
        first_url=ctx.link(listing.url()),
        reference_url=ctx.link(pages.policy_reference_url()),
    )


def _distribution(catalog: Catalog) -> tuple[dict[str, int], dict[str, int]]:
    return catalog.distribution()


def _server_rows(ctx: SiteContext, servers: Iterable[ServerRef]) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "url": ctx.link(pages.server_url(s.slug)),
            "summary": s.summary,
            "tools": s.tool_count,
            "slug": s.slug,
        }
        for s in servers
    ]


HOME_SERVER_LIMIT = 60


def home_page(ctx: SiteContext) -> bytes:
    catalog = ctx.catalog
    cats, risks = _distribution(catalog)
    total = catalog.tool_count
    page = ctx.page(
        "/",
        f"{SITE_NAME}: tools, risks and policies for MCP servers",
        f"{_plural(total, 'tool')} from {_plural(len(catalog.servers), 'MCP server')}, each with its "
        "risk level and a recommended policy that Intercept enforces.",
        [("Home", "/")],
    )
    biggest = sorted(catalog.servers, key=lambda s: (-s.tool_count, s.slug))[:HOME_SERVER_LIMIT]
    return ctx.render(
        "home.html",
        page=page,
        total=total,
        server_count=len(catalog.servers),
        servers=_server_rows(ctx, sorted(biggest, key=lambda s: s.name.lower())),
        all_servers=len(catalog.servers) <= HOME_SERVER_LIMIT,
        cats=cats,
        risks=risks,
        cat_bar=bar_segments(cats, total),
        risk_bar=bar_segments(risks, total),
        category_urls={c.value: ctx.link(pages.category_url(c)) for c in CATEGORY_ORDER},
        risk_urls={r.value: ctx.link(pages.risk_url(r)) for r in RISK_ORDER},
        patterns={c.value: PATTERNS[c] for c in CATEGORY_ORDER},
        servers_url=ctx.link(pages.servers_url()),
        search_url=ctx.link(pages.search_url()),
    )


def servers_pages(ctx: SiteContext) -> Iterator[tuple[str, bytes]]:
    """The server index, A to Z, in pages of SERVERS_PAGE_SIZE."""
    servers = sorted(ctx.catalog.servers, key=lambda s: (s.name.lower(), s.slug))
    count = pages.page_count(len(servers), pages.SERVERS_PAGE_SIZE)
    for number in range(1, count + 1):
        path = pages.servers_url(number)
        crumbs = [("Home", "/"), ("Servers", pages.servers_url())]
        if number > 1:
            crumbs.append((f"Page {number}", path))
        title = "All MCP servers" + (f", page {number} of {count}" if number > 1 else "")
        page = ctx.page(
            path,
            title,
            f"{_plural(len(servers), 'MCP server')} with their tools and recommended policies.",
            crumbs,
        )
        start = (number - 1) * pages.SERVERS_PAGE_SIZE
        rows = _server_rows(ctx, servers[start : start + pages.SERVERS_PAGE_SIZE])
        yield (
            pages.output_path(path),
            ctx.render(
                "servers.html",
                page=page,
                heading=title,
                servers=rows,
                total=len(servers),
                number=number,
                pages=count,
                prev_url=ctx.link(pages.servers_url(number - 1)) if number > 1 else None,
                next_url=ctx.link(pages.servers_url(number + 1)) if number < count else None,
            ),
        )


def index_page(ctx: SiteContext, kind: str) -> bytes:
    cats, risks = _distribution(ctx.catalog)
    if kind == "category":
        path, title = pages.categories_url(), "Tool categories"
        rows = [
            {
                "name": c.value,
                "count": cats[c.value],
                "blurb": CATEGORY_BLURB[c],
                "pattern": PATTERNS[c],
                "url": ctx.link(pages.category_url(c)),
            }
            for c in CATEGORY_ORDER
        ]
    else:
        path, title = pages.risks_url(), "Risk levels"
        rows = [
            {
                "name": r.value,
                "count": risks[r.value],
                "blurb": RISK_BLURB[r],
                "pattern": "",
                "url": ctx.link(pages.risk_url(r)),
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


def simple_page(ctx: SiteContext, template: str, path: str, title: str, description: str) -> bytes:
    page = ctx.page(path, title, description, [("Home", "/"), (title, path)])
    return ctx.render(template, page=page, write_limit=WRITE_LIMIT, execute_limit=EXECUTE_LIMIT)


def not_found_page(ctx: SiteContext) -> bytes:
    page = ctx.page("/404.html", "Page not found", "This page does not exist.", [("Home", "/")])
    page.canonical = None
    return ctx.render("404.html", page=page, servers_url=ctx.link(pages.servers_url()))


def llms_txt(ctx: SiteContext) -> str:
    catalog = ctx.catalog
    lines = [
        f"# {SITE_NAME}",
        "",
        f"> Reference pages for {catalog.tool_count:,} tools of {len(catalog.servers):,} MCP servers: "
        "what each tool does, its category and risk, and the recommended Intercept policy (YAML) that "
        "`intercept run` "
        "enforces.",
        "",
        "## Machine-readable",
        "",
        f"- [registry.json]({ctx.absolute}/registry.json): every server and tool with category, risk and "
        "recommended rules",
        f"- [Policy language]({ctx.absolute}{pages.policy_reference_url()}): the rules the policies use",
        "",
        "## Servers",
        "",
    ]
    for server in catalog.servers:
        summary = f": {_clip(server.summary, 160)}" if server.summary else ""
        lines.append(
            f"- [{_md_text(server.name)}]({ctx.absolute}{pages.server_url(server.slug)}){_md_text(summary)} "
            f"({server.tool_count} tools; policy: {ctx.absolute}{pages.policy_url(server.slug)})"
        )
    return "\n".join(lines) + "\n"


def _md_text(text: str) -> str:
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text.replace("[", "(").replace("]", ")")


def registry_json_chunks(catalog: Catalog, absolute: str) -> Iterable[str]:
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
