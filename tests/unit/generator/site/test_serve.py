"""`intercept serve` parts: the static app (index, 404) and the rebuild-on-change loop."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from starlette.testclient import TestClient

from generator.resources import templates_dir
from generator.site.build import BuildOptions
from generator.site.serve import make_app, watch_and_rebuild
from generator.site.sitemap import SITEMAP_MAX_URLS, sitemap_files
from tests.unit.generator.site.site_support import SMALL_REGISTRY, build


def test_app_serves_pages_and_the_404_page(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(SMALL_REGISTRY, out)
    client = TestClient(make_app(out))
    page = client.get("/servers/acme-jobs/tools/cancel_run/")
    assert page.status_code == 200 and "<h1><code>cancel_run</code></h1>" in page.text
    assert (
        client.get("/policies/acme-jobs.yaml").content == (out / "policies" / "acme-jobs.yaml").read_bytes()
    )
    missing = client.get("/servers/nope/")
    assert missing.status_code == 404 and "Page not found" in missing.text


def test_watch_rebuilds_after_a_registry_change_and_survives_a_broken_file(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(SMALL_REGISTRY, registry)
    out = tmp_path / "site"
    options = BuildOptions(
        registry=registry,
        out=out,
        base_url="http://127.0.0.1:9",
        search=False,
        workers=1,
        templates=templates_dir(),
    )
    build(registry, out, base_url="http://127.0.0.1:9", cache_dir=options.cache)
    reports: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_and_rebuild, args=(options, [registry], stop, reports.append))
    watcher.start()
    try:
        time.sleep(0.5)
        (registry / "broken.yaml").write_text("slug: broken\n")
        _wait_for(lambda: any("registry is invalid" in r for r in reports))
        assert (out / "servers" / "paybox" / "index.html").is_file()
        (registry / "broken.yaml").unlink()
        text = (
            (registry / "paybox.yaml").read_text().replace("PayBox payments API", "PayBox payments HTTP API")
        )
        (registry / "paybox.yaml").write_text(text)
        _wait_for(
            lambda: "PayBox payments HTTP API" in (out / "servers" / "paybox" / "index.html").read_text()
        )
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert any(r.startswith("incremental build") for r in reports)


def _wait_for(condition: object, timeout: float = 20.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_sitemap_becomes_an_index_past_50000_urls() -> None:
    entries = [(f"https://example.com/t/{i}/", None) for i in range(SITEMAP_MAX_URLS * 2 + 1)]
    files = sitemap_files(entries, "https://example.com")
    assert sorted(files) == [
        "sitemap.xml",
        "sitemaps/sitemap-1.xml",
        "sitemaps/sitemap-2.xml",
        "sitemaps/sitemap-3.xml",
    ]
    assert "<sitemapindex" in files["sitemap.xml"]
    assert files["sitemap.xml"].count("<sitemap>") == 3
    assert sum(f.count("<url>") for name, f in files.items() if name != "sitemap.xml") == len(entries)
