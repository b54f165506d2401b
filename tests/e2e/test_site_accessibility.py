"""axe-core (the npm package) in headless Chromium over every kind of page, in light and dark mode."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.site_browser_support import CHROMIUM, CHROMIUM_ARGS, serve_site, sync_api

pytestmark = pytest.mark.e2e

AXE_CORE = "axe-core@4.11.4"

PAGES = {
    "home": "/",
    "servers index": "/servers/",
    "servers index, filtered": "/servers/",
    "server": "/servers/acme-jobs/",
    "tool": "/servers/acme-jobs/tools/cancel_run/",
    "category listing": "/categories/destructive/",
    "risk listing": "/risk/critical/",
    "risk overview": "/risk/",
    "categories overview": "/categories/",
    "search": "/search/",
    "policy language": "/policy-language/",
    "about": "/about/",
    "404": "/no-such-page/",
}


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_site(tmp_path_factory.mktemp("a11y") / "site")


@pytest.fixture(scope="module")
def axe_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    prefix = tmp_path_factory.mktemp("axe")
    result = subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(prefix),
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            AXE_CORE,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return (prefix / "node_modules" / "axe-core" / "axe.min.js").read_text()


def _violations(page: Any, axe: str) -> list[str]:
    page.add_script_tag(content=axe)
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {', '.join(json.dumps(n['target']) for n in v['nodes'][:5])}"
        for v in found
    ]


# The system's colour scheme, and the scheme chosen with the toggle over a light system: each has
# its own CSS rules (a media query; a data-theme attribute).
MODES = {"light": ("light", False), "dark": ("dark", False), "toggled dark": ("light", True)}


@pytest.mark.parametrize("mode", list(MODES))
def test_every_page_kind_has_no_axe_violations(site_url: str, axe_source: str, mode: str) -> None:
    api = sync_api()
    scheme, toggle = MODES[mode]
    dark = scheme == "dark" or toggle
    report: dict[str, list[str]] = {}
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(color_scheme=scheme, viewport={"width": 1200, "height": 900})
        page = context.new_page()
        if toggle:
            page.goto(f"{site_url}/")
            page.locator("#theme-toggle").click()
        for kind, path in PAGES.items():
            response = page.goto(f"{site_url}{path}")
            assert response is not None
            assert response.status == (404 if kind == "404" else 200), kind
            if kind == "search":
                page.locator(".pagefind-ui__search-input").fill("cancel")
                page.wait_for_function(
                    "document.querySelectorAll('.pagefind-ui__result-link').length >= 3", timeout=15000
                )
                # Open every filter group, so its checkboxes are checked too.
                page.locator(".pagefind-ui__filter-name").first.wait_for(timeout=15000)
                for summary in page.locator(".pagefind-ui__filter-name").all():
                    summary.click()
                assert page.locator(".pagefind-ui__filter-checkbox").first.is_visible()
            if kind == "servers index, filtered":
                # Rows hidden, the live region changed, and then no match: its message shown.
                page.get_by_label("Has tools at risk").select_option("critical")
                page.get_by_label("Name").fill("no such server")
                assert page.locator("#server-table-empty").is_visible()
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == ("rgb(13, 17, 23)" if dark else "rgb(255, 255, 255)"), kind
            report[kind] = _violations(page, axe_source)
        browser.close()
    assert {kind: found for kind, found in report.items() if found} == {}
