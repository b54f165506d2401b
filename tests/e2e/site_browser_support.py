"""Serving a built site on 127.0.0.1 and driving Debian's Chromium with Playwright."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from generator.site.serve import make_app
from tests.conftest import free_port
from tests.unit.generator.site.site_support import SMALL_REGISTRY, build

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def sync_api() -> Any:
    """Playwright's sync API, once Chromium is known to be installed."""
    api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    return api


def serve_site(
    out: Path, registry: Path = SMALL_REGISTRY, edit: Callable[[], None] | None = None, **build_options: Any
) -> Iterator[str]:
    """Build (and, after edit, rebuild incrementally) the site, then serve it on 127.0.0.1."""
    port = free_port()
    build(registry, out, search=True, base_url=f"http://127.0.0.1:{port}", **build_options)
    if edit is not None:
        edit()
        rebuilt = build(registry, out, search=True, base_url=f"http://127.0.0.1:{port}", **build_options)
        assert rebuilt.mode == "incremental" and rebuilt.search_bundles is not None
        assert rebuilt.search_bundles[0] == 1 < rebuilt.search_bundles[1]
    server = uvicorn.Server(uvicorn.Config(make_app(out), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
