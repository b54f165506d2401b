"""Structured data for search engines: BreadcrumbList on every page, FAQPage where a page has an FAQ,
and the tool itself (server, version, date, ratings) on tool pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generator.site.faq import QA


def breadcrumb_list(crumbs: Sequence[tuple[str, str]], absolute: str) -> dict[str, Any]:
    """crumbs are (name, site path); absolute is the base URL without a trailing slash."""
    return {
        "@type": "BreadcrumbList",
        "itemListElement": [
            {"@type": "ListItem", "position": i, "name": name, "item": absolute + path}
            for i, (name, path) in enumerate(crumbs, start=1)
        ],
    }


def faq_page(items: Sequence[QA]) -> dict[str, Any]:
    return {
        "@type": "FAQPage",
        "mainEntity": [
            {
                "@type": "Question",
                "name": qa.question,
                "acceptedAnswer": {"@type": "Answer", "text": qa.answer},
            }
            for qa in items
        ],
    }


def tool_work(
    name: str,
    description: str,
    server: str,
    version: str,
    modified: str,
    repository: str | None,
    facts: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """A tool page's subject: the tool, part of its server at the scanned version, with its ratings."""
    application: dict[str, Any] = {"@type": "SoftwareApplication", "name": server, "softwareVersion": version}
    if repository:
        application["codeRepository"] = repository
    return {
        "@type": "CreativeWork",
        "name": name,
        "description": description,
        "isPartOf": application,
        "dateModified": modified,
        "additionalProperty": [{"@type": "PropertyValue", "name": k, "value": v} for k, v in facts],
    }


def graph(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"@context": "https://schema.org", "@graph": list(nodes)}
