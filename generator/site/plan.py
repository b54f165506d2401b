"""The page plan: every file the site has, the URL it serves, what renders it and the inputs its key covers.

- Units, one per server (`unit_files`): its tool pages, its server page and its policy file. Key
  (`record.unit_key`): the build settings, the server file's hash, and the servers its similar-tools
  lists show, with what they display.
- Browse pages (`listing_pages`): every tool of one category or risk level, `urls.PAGE_SIZE` a page.
  Key (`record.page_key`): the listing's size and patterns, and the tools the page lists with what
  they display.
- Groups of site-wide files (`GROUPS`), rendered together and keyed by what they show: the overview
  (home, server index, category and risk indexes, search, policy language, 404, llms.txt), the
  sitemap (every page of `public_pages`) and the catalogue (registry.json).
- Files written every build (`fixed_files`): robots.txt and the assets.
- The search index (`generator.site.search`): bundles of servers, keyed by their servers' unit keys.

The build settings (`build.settings_key`: code, templates, base URL, search on or off) are part of
every key, so a change to any of them renders everything again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from generator.catalog.models import CATEGORY_ORDER, RISK_ORDER
from generator.catalog.policyfile import render_policy_file
from generator.site import urls
from generator.site.conformance import RESULTS
from generator.site.parsecache import Catalog
from generator.site.record import Deps, digest, page_deps
from generator.site.render import pygments_css
from generator.site.sitemap import robots_txt, sitemap_files
from generator.site.views import about, home, indexes, llms, registry_json, simple
from generator.site.views.context import SiteContext
from generator.site.views.listing import Listing, listing_header, listing_items, listings
from generator.site.views.server import server_page
from generator.site.views.tool import tool_page

Files = Iterable[tuple[str, bytes]]
"""(path relative to the site root, content) pairs."""


def unit_files(ctx: SiteContext, slug: str) -> list[tuple[str, bytes]]:
    """Everything one server produces: its tool pages, its server page and its policy file."""
    server = ctx.catalog.load_server(slug)
    server_ref = ctx.catalog.server(slug)
    out: list[tuple[str, bytes]] = []
    for tool in server.tools:
        url = urls.tool_url(slug, tool.name)
        out.append((urls.output_path(url), tool_page(ctx, server, server_ref, tool)))
    policy_text = render_policy_file(server)
    out.append((urls.output_path(urls.server_url(slug)), server_page(ctx, server, server_ref, policy_text)))
    out.append((urls.policy_url(slug)[1:], policy_text.encode("utf-8")))
    strict = render_policy_file(server, default="deny")
    out.append((urls.strict_policy_url(slug)[1:], strict.encode("utf-8")))
    return out


@dataclass(frozen=True, slots=True)
class ListingPage:
    rel: str
    """The file, relative to the site root."""
    listing: Listing
    number: int

    def deps(self) -> Deps:
        """What the page shows: its listing's size and patterns, and the tools it lists."""
        items = listing_items(self.listing, self.number)
        return page_deps(listing_header(self.listing), self.listing.pages, ((t.slug, t.name) for t in items))


def listing_pages(catalog: Catalog) -> Iterator[ListingPage]:
    """Every browse page: each category's, then each risk level's, page by page."""
    for listing in listings(catalog):
        for number in range(1, listing.pages + 1):
            yield ListingPage(urls.output_path(listing.url(number)), listing, number)


@dataclass(frozen=True, slots=True)
class FileGroup:
    """Site-wide files rendered together, and again only when their key changes."""

    name: str
    """The group's name in the build manifest; it starts with '@', which no server slug can."""
    key: Callable[[str, SiteContext], str]
    """The group's key from the build settings and the site, made of exactly what the files show."""
    files: Callable[[SiteContext], Files]


def _overview_key(settings: str, ctx: SiteContext) -> str:
    """Names, summaries, statuses, annotation hints and tool counts of every server, the index page
    size, the search bundles, the conformance results and the about page's demo server."""
    return digest(
        [
            settings,
            str(urls.SERVERS_PAGE_SIZE),
            " ".join(ctx.search_merge),
            RESULTS.read_text() if RESULTS.is_file() else "",
            *(
                f"{s.slug}\0{s.name}\0{s.summary}\0{s.structure}\0{s.status}\0{' '.join(s.hints)}"
                for s in ctx.catalog.servers
            ),
            *(s.file_hash for s in ctx.catalog.servers if s.slug == about.DEMO_SERVER),
        ]
    )


def _overview_files(ctx: SiteContext) -> Files:
    yield "index.html", home.home_page(ctx)
    yield from indexes.servers_pages(ctx)
    yield "categories/index.html", indexes.index_page(ctx, "category")
    yield "risk/index.html", indexes.index_page(ctx, "risk")
    yield (
        urls.output_path(urls.search_url()),
        simple.simple_page(
            ctx, "search.html", urls.search_url(), "Search", "Search every MCP tool, server and policy."
        ),
    )
    yield (
        urls.output_path(urls.policy_reference_url()),
        simple.simple_page(
            ctx,
            "policy-language.html",
            urls.policy_reference_url(),
            "Policy language",
            "The rules Intercept policies use: allow, deny, rate limits and argument checks.",
        ),
    )
    yield urls.output_path(urls.about_url()), about.about_page(ctx)
    yield "404.html", simple.not_found_page(ctx)
    yield "llms.txt", llms.llms_txt(ctx).encode("utf-8")


def public_pages(catalog: Catalog) -> Iterator[tuple[str, str | None]]:
    """Every page the sitemap lists, as (site path, date its data was obtained or None), in its order."""
    for path in (
        "/",
        urls.servers_url(),
        urls.categories_url(),
        urls.risks_url(),
        urls.policy_reference_url(),
        urls.about_url(),
    ):
        yield path, None
    server_pages = urls.page_count(len(catalog.servers), urls.SERVERS_PAGE_SIZE)
    for number in range(2, server_pages + 1):
        yield urls.servers_url(number), None
    yield from ((url, None) for url in _listing_urls(catalog))
    for server in catalog.servers:
        yield urls.server_url(server.slug), server.obtained_at
        for tool in server.tools:
            yield urls.tool_url(server.slug, tool.name), server.obtained_at


def _listing_urls(catalog: Catalog) -> Iterator[str]:
    """Every browse page's URL, in the order of `listing_pages`, from tool counts alone."""
    cats, risks = catalog.distribution()
    for category in CATEGORY_ORDER:
        for number in range(1, urls.page_count(cats[category.value]) + 1):
            yield urls.category_url(category, number)
    for risk in RISK_ORDER:
        for number in range(1, urls.page_count(risks[risk.value]) + 1):
            yield urls.risk_url(risk, number)


def _sitemap_key(settings: str, ctx: SiteContext) -> str:
    """Which pages exist (every server's tool names, the page sizes) and the dates of their data."""
    return digest(
        [
            settings,
            f"{urls.PAGE_SIZE} {urls.SERVERS_PAGE_SIZE}",
            *(f"{s.slug}\0{s.structure}\0{s.obtained_at}" for s in ctx.catalog.servers),
        ]
    )


def _sitemap_files(ctx: SiteContext) -> Files:
    entries = [(ctx.absolute + path, lastmod) for path, lastmod in public_pages(ctx.catalog)]
    for rel, text in sitemap_files(entries, ctx.absolute).items():
        yield rel, text.encode("utf-8")


def _catalogue_key(settings: str, ctx: SiteContext) -> str:
    """Every server file's content."""
    return digest([settings, *(f"{s.slug}\0{s.file_hash}" for s in ctx.catalog.servers)])


def _catalogue_files(ctx: SiteContext) -> Files:
    yield "registry.json", "".join(registry_json.registry_json_chunks(ctx.catalog, ctx.absolute)).encode()


GROUPS: tuple[FileGroup, ...] = (
    FileGroup("@overview", _overview_key, _overview_files),
    FileGroup("@sitemap", _sitemap_key, _sitemap_files),
    FileGroup("@catalogue", _catalogue_key, _catalogue_files),
)


def fixed_files(ctx: SiteContext) -> Files:
    """robots.txt and the assets: cheap to produce, so not keyed."""
    yield "robots.txt", robots_txt(ctx.absolute).encode("utf-8")
    assets = Path(ctx.env.loader.searchpath[0]) / "assets"  # type: ignore[union-attr]
    for path in sorted(p for p in assets.rglob("*") if p.is_file()):
        yield f"assets/{path.relative_to(assets).as_posix()}", path.read_bytes()
    yield "assets/pygments.css", pygments_css().encode("utf-8")
