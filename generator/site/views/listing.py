"""Browse pages: every tool of one category or one risk level, in pages of `urls.PAGE_SIZE`."""

from __future__ import annotations

from dataclasses import dataclass

from generator.catalog.models import CATEGORY_ORDER, RISK_ORDER, Category, Risk
from generator.catalog.recommend import PATTERNS
from generator.site import urls
from generator.site.parsecache import Catalog, ToolRef
from generator.site.views.context import CATEGORY_BLURB, RISK_BLURB, SiteContext, plural, tool_table


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
            return urls.category_url(self.value, number)
        return urls.risk_url(self.value, number)

    @property
    def pages(self) -> int:
        return urls.page_count(len(self.tools))


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


def listing_items(listing: Listing, number: int) -> list[ToolRef]:
    start = (number - 1) * urls.PAGE_SIZE
    return listing.tools[start : start + urls.PAGE_SIZE]


def listing_page(ctx: SiteContext, listing: Listing, number: int) -> bytes:
    value = listing.value.value
    is_cat = isinstance(listing.value, Category)
    label = f"{value.capitalize()} tools" if is_cat else f"{value.capitalize()}-risk tools"
    path = listing.url(number)
    parent = ("Categories", urls.categories_url()) if is_cat else ("Risk levels", urls.risks_url())
    crumbs = [("Home", "/"), parent, (label, listing.url())]
    if number > 1:
        crumbs.append((f"Page {number}", path))
    blurb = (
        CATEGORY_BLURB[listing.value] if isinstance(listing.value, Category) else RISK_BLURB[listing.value]
    )
    patterns = list(listing.patterns)
    title = label + (f", page {number} of {listing.pages}" if number > 1 else "")
    page = ctx.page(
        path, f"{title}: MCP tool reference", f"{plural(len(listing.tools), 'MCP tool')}. {blurb}", crumbs
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
        tools=tool_table(ctx, listing_items(listing, number), listing.kind),
        number=number,
        pages=listing.pages,
        prev_url=prev_url,
        next_url=next_url,
        first_url=ctx.link(listing.url()),
        reference_url=ctx.link(urls.policy_reference_url()),
    )
