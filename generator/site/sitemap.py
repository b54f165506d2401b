"""sitemap.xml (a sitemap index past 50,000 URLs) and robots.txt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.sax.saxutils import escape

_XML_SAFE = re.compile(r"^[A-Za-z0-9:/._~%-]*$")

SITEMAP_MAX_URLS = 50_000
"""The sitemaps.org protocol's limit per file."""


def _urlset(entries: Sequence[tuple[str, str | None]]) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    for loc, lastmod in entries:
        mod = f"<lastmod>{escape(lastmod)}</lastmod>" if lastmod else ""
        # Site URLs are built from validated slugs and names; only a stray base URL could need escaping.
        safe = loc if _XML_SAFE.match(loc) else escape(loc)
        lines.append(f"<url><loc>{safe}</loc>{mod}</url>")
    lines.append("</urlset>")
    return "\n".join(lines) + "\n"


def sitemap_files(entries: Sequence[tuple[str, str | None]], absolute: str) -> dict[str, str]:
    """Map of site-relative file name to content. entries are (absolute URL, ISO date or None)."""
    if len(entries) <= SITEMAP_MAX_URLS:
        return {"sitemap.xml": _urlset(entries)}
    files: dict[str, str] = {}
    index = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">',
    ]
    for number, start in enumerate(range(0, len(entries), SITEMAP_MAX_URLS), start=1):
        name = f"sitemaps/sitemap-{number}.xml"
        files[name] = _urlset(entries[start : start + SITEMAP_MAX_URLS])
        index.append(f"<sitemap><loc>{escape(absolute)}/{name}</loc></sitemap>")
    index.append("</sitemapindex>")
    files["sitemap.xml"] = "\n".join(index) + "\n"
    return files


def robots_txt(absolute: str) -> str:
    return f"User-agent: *\nAllow: /\n\nSitemap: {absolute}/sitemap.xml\n"
