"""The built site in headless Chromium (Debian's package, driven by Playwright), served on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from generator.catalog.load import load_registry
from generator.catalog.policyfile import tool_snippet
from generator.catalog.risk import assess
from generator.site.search import plan_shards
from tests.e2e.site_browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve_site, sync_api
from tests.unit.generator.site.site_support import SMALL_REGISTRY

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_site(tmp_path_factory.mktemp("browser") / "site")


SHARD_PAGES = 5


@pytest.fixture(scope="module")
def sharded_site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_site(tmp_path_factory.mktemp("sharded") / "site", search_shard_pages=SHARD_PAGES)


UNIQUE_WORD = "quasarflux"


@pytest.fixture(scope="module")
def edited_sharded_site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A sharded site rebuilt incrementally after a tool's description gained a new word."""
    root = tmp_path_factory.mktemp("edited")
    registry = root / "registry"
    shutil.copytree(SMALL_REGISTRY, registry)
    target = registry / "pipeline-ci.yaml"

    def edit() -> None:
        # After the first sentence, so no other page shows the change and one bundle is re-indexed.
        text = target.read_text()
        sentence = "description: Cancel a running build."
        assert sentence in text
        target.write_text(text.replace(sentence, f"{sentence} {UNIQUE_WORD.capitalize()} aware."))

    yield from serve_site(root / "site", registry, edit, search_shard_pages=SHARD_PAGES)


def _search(page: Any, base: str, query: str, at_least: int) -> set[str]:
    page.goto(f"{base}/search/")
    page.locator(".pagefind-ui__search-input").fill(query)
    page.wait_for_function(
        f"document.querySelectorAll('.pagefind-ui__result-link').length >= {at_least}", timeout=15000
    )
    links = page.locator(".pagefind-ui__result-link")
    return {
        str(href).removeprefix(base)
        for href in links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    }


def test_search_after_an_incremental_rebuild_finds_changed_and_unchanged_bundles(
    edited_sharded_site_url: str,
) -> None:
    api = sync_api()
    errors: list[str] = []
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
        base = edited_sharded_site_url
        assert _search(page, base, UNIQUE_WORD, 1) == {"/servers/pipeline-ci/tools/cancel_build/"}
        found = _search(page, base, "cancel", 3)
        page.screenshot(path=str(ARTIFACTS / "site-search-after-incremental.png"))
        browser.close()
    assert {
        "/servers/acme-jobs/tools/cancel_run/",
        "/servers/paybox/tools/cancel_subscription/",
        "/servers/pipeline-ci/tools/cancel_build/",
    } <= found
    assert errors == []


def test_tool_page_copy_search_dark_mode_without_console_errors(site_url: str) -> None:
    api = sync_api()
    server = load_registry(SMALL_REGISTRY).by_slug("acme-jobs")
    assert server is not None
    tool = server.tool("cancel_run")
    assert tool is not None
    errors: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(color_scheme="light", viewport={"width": 1200, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site_url)
        page = context.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
        outside: list[str] = []
        page.on("request", lambda req: outside.append(req.url) if not req.url.startswith(site_url) else None)

        page.goto(f"{site_url}/servers/acme-jobs/tools/cancel_run/")
        assert page.locator("h1").inner_text() == "cancel_run"
        assert "Part of the Acme Jobs MCP server" in page.locator("main").inner_text()
        page.screenshot(path=str(ARTIFACTS / "site-tool-page.png"), full_page=True)

        page.locator('button.copy[data-copy="snippet"]').click()
        page.wait_for_function(
            "document.querySelector('button.copy[data-copy=snippet]').textContent === 'Copied'"
        )
        assert page.evaluate("navigator.clipboard.readText()") == tool_snippet(tool)

        background = "getComputedStyle(document.body).backgroundColor"
        assert page.evaluate(background) == "rgb(255, 255, 255)"
        page.locator("#theme-toggle").click()
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        assert page.evaluate(background) == "rgb(13, 17, 23)"
        assert page.locator("#theme-toggle").get_attribute("aria-pressed") == "true"
        page.reload()
        assert page.evaluate(background) == "rgb(13, 17, 23)"
        page.screenshot(path=str(ARTIFACTS / "site-tool-page-dark.png"))
        page.locator("#theme-toggle").click()
        assert page.evaluate(background) == "rgb(255, 255, 255)"

        page.goto(f"{site_url}/search/")
        page.locator(".pagefind-ui__search-input").fill("cancel")
        result = page.locator(".pagefind-ui__result-link", has_text="cancel_run").first
        result.wait_for(timeout=15000)
        assert result.get_attribute("href", timeout=5000).endswith("/servers/acme-jobs/tools/cancel_run/")
        page.screenshot(path=str(ARTIFACTS / "site-search.png"))

        page.goto(f"{site_url}/servers/acme-jobs/")
        page.screenshot(path=str(ARTIFACTS / "site-server-page.png"), full_page=True)
        page.goto(f"{site_url}/")
        browser.close()
    assert errors == []
    assert outside == []


def test_search_finds_tools_in_every_search_bundle_of_a_sharded_site(sharded_site_url: str) -> None:
    api = sync_api()
    registry = load_registry(SMALL_REGISTRY)
    shards = plan_shards([(s.slug, len(s.tools) + 1) for s in registry.servers], SHARD_PAGES)
    bundle_of = {slug: shard.bundle for shard in shards for slug in shard.slugs}
    # "cancel" matches a tool in the primary bundle and tools in merged ones.
    expected = {
        f"/servers/{server.slug}/tools/{tool.name}/": bundle_of[server.slug]
        for server in registry.servers
        for tool in server.tools
        if tool.name.startswith("cancel_")
    }
    assert "" in expected.values()
    assert {bundle for bundle in expected.values() if bundle}, "no cancel_ tool outside the primary bundle"
    errors: list[str] = []
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
        merged: set[str] = set()
        page.on(
            "request",
            lambda req: (
                merged.add(req.url.split("/pagefind/", 1)[1].split("/", 1)[0])
                if "/pagefind/shard-" in req.url
                else None
            ),
        )
        page.goto(f"{sharded_site_url}/search/")
        page.locator(".pagefind-ui__search-input").fill("cancel")
        links = page.locator(".pagefind-ui__result-link")
        page.wait_for_function(
            f"document.querySelectorAll('.pagefind-ui__result-link').length >= {len(expected)}",
            timeout=15000,
        )
        found = {
            str(href).removeprefix(sharded_site_url)
            for href in links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
        }
        page.screenshot(path=str(ARTIFACTS / "site-search-sharded.png"))
        browser.close()
    assert set(expected) <= found
    assert {bundle for bundle in expected.values() if bundle} <= merged
    assert errors == []


def test_search_filters_narrow_results_by_server_risk_and_category(site_url: str) -> None:
    api = sync_api()
    registry = load_registry(SMALL_REGISTRY)
    cancel_tools = {
        f"/servers/{server.slug}/tools/{tool.name}/": (server.name, tool)
        for server in registry.servers
        for tool in server.tools
        if tool.name.startswith("cancel_")
    }
    paybox = {url for url, (name, _) in cancel_tools.items() if name == "PayBox"}
    assert paybox and paybox != set(cancel_tools)
    errors: list[str] = []
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        base = site_url
        assert _search(page, base, "cancel", len(cancel_tools)) == set(cancel_tools)
        # The filters load after the first results.
        page.wait_for_function(
            "document.querySelectorAll('.pagefind-ui__filter-name').length >= 3", timeout=15000
        )
        names = [name.strip() for name in page.locator(".pagefind-ui__filter-name").all_inner_texts()]
        assert names == ["Category", "Risk", "Server"]
        page.locator(".pagefind-ui__filter-name", has_text="Server").click()
        page.locator(".pagefind-ui__filter-label", has_text="PayBox").click()
        page.wait_for_function(
            f"document.querySelectorAll('.pagefind-ui__result-link').length === {len(paybox)}", timeout=15000
        )
        links = page.locator(".pagefind-ui__result-link").evaluate_all(
            "els => els.map(e => e.getAttribute('href'))"
        )
        assert {str(link).removeprefix(base) for link in links} == paybox
        page.screenshot(path=str(ARTIFACTS / "site-search-filtered.png"))
        browser.close()
    assert errors == []


def _shown_servers(page: Any) -> set[str]:
    rows = page.locator("#server-table tbody tr:not([hidden]) th a")
    return {
        str(href).removeprefix("/servers/").strip("/")
        for href in rows.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    }


def test_server_index_filters_rows_by_name_category_risk_and_annotation(site_url: str) -> None:
    registry = load_registry(SMALL_REGISTRY)
    every = {s.slug for s in registry.servers}
    critical = {s.slug for s in registry.servers if any(assess(t).level.value == "critical" for t in s.tools)}
    financial = {s.slug for s in registry.servers if any(t.category.value == "financial" for t in s.tools)}
    read_only = {
        s.slug for s in registry.servers if any(t.annotations.get("readOnlyHint") is True for t in s.tools)
    }
    # Each filter must narrow the list, or the test could not tell a working filter from none.
    assert {frozenset(critical), frozenset(financial), frozenset(read_only)}.isdisjoint({frozenset(every)})
    assert read_only and critical & financial
    errors: list[str] = []
    with sync_api().sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{site_url}/servers/")
        count = page.locator("#filter-count")
        assert _shown_servers(page) == every
        assert count.inner_text() == f"{len(every)} of {len(every)} servers"
        assert count.get_attribute("role") == "status"

        page.get_by_label("Has tools at risk").select_option("critical")
        assert _shown_servers(page) == critical
        assert count.inner_text() == f"{len(critical)} of {len(every)} servers"
        page.get_by_label("Has tools of category").select_option("financial")
        assert _shown_servers(page) == critical & financial
        page.get_by_label("Has tools at risk").select_option("")
        page.get_by_label("Has tools of category").select_option("")
        page.get_by_label("Has tools annotated").select_option("readOnlyHint")
        assert _shown_servers(page) == read_only
        page.get_by_label("Has tools annotated").select_option("")

        # Typed from the keyboard: the name box narrows as it changes, case-insensitively.
        page.get_by_label("Name").focus()
        page.keyboard.type("PAYB")
        assert _shown_servers(page) == {"paybox"}
        assert count.inner_text() == f"1 of {len(every)} servers"
        page.keyboard.type("zzz")
        assert _shown_servers(page) == set()
        assert page.locator("#server-table-empty").is_visible()
        page.screenshot(path=str(ARTIFACTS / "site-servers-filtered.png"))
        browser.close()
    assert errors == []


def test_server_index_lists_every_server_without_javascript(site_url: str) -> None:
    registry = load_registry(SMALL_REGISTRY)
    with sync_api().sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(java_script_enabled=False).new_page()
        page.goto(f"{site_url}/servers/")
        assert _shown_servers(page) == {s.slug for s in registry.servers}
        assert not page.locator("#server-filters").is_visible()
        browser.close()


LAYOUT_SHIFT = """() => new Promise(resolve => {
  let total = 0;
  new PerformanceObserver(list => { for (const e of list.getEntries()) { total += e.value; } })
    .observe({type: 'layout-shift', buffered: true});
  setTimeout(() => resolve(total), 500);
})"""


def test_pages_load_without_layout_shift(site_url: str) -> None:
    # What scripts draw after load (the search box, the theme toggle's label) has its room reserved.
    # bench/lighthouse.py also measures the search page while results arrive, which varies run to run.
    api = sync_api()
    paths = [
        "/",
        "/servers/acme-jobs/",
        "/servers/acme-jobs/tools/cancel_run/",
        "/servers/",
        "/categories/destructive/",
        "/risk/critical/",
        "/search/",
    ]
    shifts: dict[str, float] = {}
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for width, height in [(412, 823), (1350, 940)]:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            for path in paths:
                page.goto(f"{site_url}{path}", wait_until="load")
                if path in ("/", "/search/"):
                    page.locator(".pagefind-ui__search-input").wait_for()
                shifts[f"{width} {path}"] = float(page.evaluate(LAYOUT_SHIFT))
            context.close()
        browser.close()
    assert {key: value for key, value in shifts.items() if value > 0.05} == {}
