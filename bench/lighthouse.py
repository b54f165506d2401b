"""Lighthouse scores and layout shift of the built site, served on 127.0.0.1.

Usage: python bench/lighthouse.py [--registry registry/] [--runs 1]

Builds the site from the registry (with search) into a scratch folder, with --base-url set to the
address it is then served on (so canonical links and robots.txt point at the served site), and for
the home page, a server, a tool, a category listing and the search page:
  - runs Lighthouse (npm `lighthouse`, installed into a scratch folder; Debian's /usr/bin/chromium,
    headless, --no-sandbox) with its mobile and desktop presets and prints performance,
    accessibility, best practices and SEO (the lowest of --runs runs);
  - measures cumulative layout shift in Chromium through Playwright (a PerformanceObserver for
    'layout-shift', buffered) at 412x823 and 1350x940; on the search page after typing a query
    (keystrokes, as a reader types) and after setting it without keystrokes (so no shift is
    excused as following input).
Performance scores depend on how busy the machine is; say how loaded it was next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from generator.catalog.load import load_registry  # noqa: E402
from generator.site.serve import make_app  # noqa: E402
from generator.site.urls import tool_url  # noqa: E402

LIGHTHOUSE = "lighthouse@12.8.2"  # the last major that runs on Node 20
CHROMIUM = "/usr/bin/chromium"
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run "
    "--disable-background-networking --disable-component-update --disable-sync"
)
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
VIEWPORTS = {"mobile": (412, 823), "desktop": (1350, 940)}
CLS_JS = """() => new Promise(resolve => {
  let cls = 0;
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) { if (!e.hadRecentInput) { cls += e.value; } }
  }).observe({type: 'layout-shift', buffered: true});
  setTimeout(() => resolve(cls), 1500);
})"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pages(registry: Path) -> dict[str, str]:
    servers = load_registry(registry).servers
    server = max(servers, key=lambda s: len(s.tools))
    tool = server.tools[0]
    return {
        "home": "/",
        "server": f"/servers/{server.slug}/",
        "tool": tool_url(server.slug, tool.name),
        "listing": f"/categories/{tool.category.value}/",
        "search": "/search/",
    }


def _install_lighthouse(scratch: Path) -> Path:
    subprocess.run(
        [
            "npm",
            "install",
            "--prefix",
            str(scratch),
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            LIGHTHOUSE,
        ],
        check=True,
        capture_output=True,
    )
    return scratch / "node_modules" / "lighthouse" / "cli" / "index.js"


def _lighthouse(cli: Path, url: str, preset: str, out: Path) -> dict[str, int]:
    command = [
        "node",
        str(cli),
        url,
        "--output=json",
        f"--output-path={out}",
        "--quiet",
        f"--chrome-flags={CHROME_FLAGS}",
        f"--only-categories={','.join(CATEGORIES)}",
    ]
    if preset == "desktop":
        command.append("--preset=desktop")
    subprocess.run(command, check=True, env={**os.environ, "CHROME_PATH": CHROMIUM}, capture_output=True)
    report = json.loads(out.read_text())
    failed = [
        audit_id
        for category in CATEGORIES
        for ref in report["categories"][category]["auditRefs"]
        if ref["weight"] > 0
        and (audit_id := ref["id"])
        and report["audits"][audit_id]["score"] is not None
        and report["audits"][audit_id]["score"] < 1
    ]
    if failed:
        print(f"  {url} ({preset}) below full marks on: {', '.join(sorted(set(failed)))}", file=sys.stderr)
    return {category: round(report["categories"][category]["score"] * 100) for category in CATEGORIES}


def _cls(browser: Any, url: str, size: tuple[int, int], query: str | None, typed: bool) -> float:
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.goto(url, wait_until="load")
    if query is not None:
        box = page.locator(".pagefind-ui__search-input")
        if typed:
            box.press_sequentially(query, delay=60)
        else:
            box.fill(query)
        page.wait_for_function("document.querySelectorAll('.pagefind-ui__result-link').length > 0")
    value = float(page.evaluate(CLS_JS))
    context.close()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--registry", type=Path, default=ROOT / "registry")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--query", default="delete")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="intercept-lighthouse-") as scratch_name:
        scratch = Path(scratch_name)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        intercept = Path(sys.executable).parent / "intercept"
        subprocess.run(
            [
                str(intercept),
                "build",
                "--registry",
                str(args.registry),
                "--out",
                str(scratch / "site"),
                "--base-url",
                base,
            ],
            check=True,
        )
        cli = _install_lighthouse(scratch / "npm")
        server = uvicorn.Server(
            uvicorn.Config(make_app(scratch / "site"), host="127.0.0.1", port=port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        pages = _pages(args.registry)
        load = os.getloadavg()[0]
        print(f"{time.strftime('%Y-%m-%d %H:%M')}  load average {load:.2f} on {os.cpu_count()} cores")
        print(f"{'page':<8} {'preset':<8} {'perf':>5} {'a11y':>5} {'bp':>5} {'seo':>5}")
        for name, path in pages.items():
            for preset in ("mobile", "desktop"):
                runs = [
                    _lighthouse(cli, base + path, preset, scratch / "report.json") for _ in range(args.runs)
                ]
                worst = {category: min(run[category] for run in runs) for category in CATEGORIES}
                print(f"{name:<8} {preset:<8} " + " ".join(f"{worst[c]:>5}" for c in CATEGORIES))
        print(f"\n{'page':<13} {'viewport':<9} {'CLS':>7}")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_FLAGS.split())
            for name, path in pages.items():
                for viewport, size in VIEWPORTS.items():
                    print(f"{name:<13} {viewport:<9} {_cls(browser, base + path, size, None, False):>7.4f}")
                    if name == "search":
                        for typed in (True, False):
                            value = _cls(browser, base + path, size, args.query, typed)
                            how = "typed" if typed else "set"
                            print(f"{name + ' ' + how:<13} {viewport:<9} {value:>7.4f}")
            browser.close()
        print(f"load average {os.getloadavg()[0]:.2f} after the run")
        server.should_exit = True


if __name__ == "__main__":
    main()
