"""The site's URL scheme: every page's path, built only from validated slugs and tool names.

URLs end in `/` and map to `<path>/index.html`. Tool names may contain `.`, so a name such as `..`
or `.env` must never become a path segment as-is: a leading run of dots is written as `~` (a
character no tool name can contain), which keeps the mapping one-to-one and every segment safe.
"""

from __future__ import annotations

import re

from generator.catalog.models import SLUG_RE, Category, Risk
from intercept.policy import TOOL_NAME_RE

PAGE_SIZE = 100
"""Tools per browse page: keeps a 250,000-tool category at ~100 KB per page."""

SERVERS_PAGE_SIZE = 500
"""Servers per page of the server index (~75 KB)."""

_LEADING_DOTS = re.compile(r"^\.+")


class UnsafeNameError(ValueError):
    """A slug or tool name that failed validation reached the URL builder."""


def tool_segment(name: str) -> str:
    """The path segment for a tool name: the name itself, with leading dots replaced by `~`."""
    if not TOOL_NAME_RE.match(name):
        raise UnsafeNameError(f"tool name {name!r} cannot be part of a URL")
    return _LEADING_DOTS.sub(lambda m: "~" * len(m.group(0)), name)


def _slug(slug: str) -> str:
    if not SLUG_RE.match(slug):
        raise UnsafeNameError(f"slug {slug!r} cannot be part of a URL")
    return slug


def home_url() -> str:
    return "/"


def servers_url(page: int = 1) -> str:
    return "/servers/" if page == 1 else f"/servers/page/{page}/"


def server_url(slug: str) -> str:
    return f"/servers/{_slug(slug)}/"


def tool_url(slug: str, name: str) -> str:
    return f"/servers/{_slug(slug)}/tools/{tool_segment(name)}/"


def policy_url(slug: str) -> str:
    return f"/policies/{_slug(slug)}.yaml"


def strict_policy_url(slug: str) -> str:
    """The `default: deny` variant; a folder of its own, so no slug can collide with it."""
    return f"/policies/strict/{_slug(slug)}.yaml"


def about_url() -> str:
    return "/about/"


def category_url(category: Category, page: int = 1) -> str:
    base = f"/categories/{category.value}/"
    return base if page == 1 else f"{base}page/{page}/"


def risk_url(risk: Risk, page: int = 1) -> str:
    base = f"/risk/{risk.value}/"
    return base if page == 1 else f"{base}page/{page}/"


def categories_url() -> str:
    return "/categories/"


def risks_url() -> str:
    return "/risk/"


def search_url() -> str:
    return "/search/"


def policy_reference_url() -> str:
    return "/policy-language/"


def page_count(items: int, size: int | None = None) -> int:
    per_page = PAGE_SIZE if size is None else size
    return max(1, -(-items // per_page))


def output_path(url: str) -> str:
    """The file, relative to the site root, that serves a URL: `/a/b/` is `a/b/index.html`."""
    if not url.startswith("/") or "//" in url or "/../" in url or "/./" in url:
        raise UnsafeNameError(f"URL {url!r} is not a clean site path")
    rel = url[1:]
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    if any(part in {"", ".", ".."} for part in rel.split("/")):
        raise UnsafeNameError(f"URL {url!r} is not a clean site path")
    return rel
