"""`intercept serve`: build, serve the site on 127.0.0.1, and rebuild when registry or templates change."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import uvicorn
import watchfiles
from starlette.applications import Starlette
from starlette.staticfiles import StaticFiles

from generator.catalog.load import RegistryError
from generator.site.build import BuildOptions, BuildResult, build_site


def make_app(site: Path) -> Starlette:
    app = Starlette()
    # html=True serves index.html for directories and 404.html for missing paths, like a static host.
    app.mount("/", StaticFiles(directory=str(site), html=True, check_dir=False), name="site")
    return app


def watch_and_rebuild(
    options: BuildOptions,
    watch: list[Path],
    stop: threading.Event,
    report: Callable[[str], None],
) -> None:
    """Rebuild after every batch of changes until stop is set; a failed build keeps the old site."""
    for _changes in watchfiles.watch(*watch, stop_event=stop, debounce=300, raise_interrupt=False):
        report("change detected, rebuilding…")
        try:
            result: BuildResult = build_site(options)
        except RegistryError as exc:
            report("registry is invalid; still serving the previous build:\n" + exc.render())
            continue
        except Exception as exc:
            report(f"build failed; still serving the previous build: {exc}")
            continue
        report(result.summary())


def serve(options: BuildOptions, port: int, report: Callable[[str], None]) -> None:
    """Build once, then serve on 127.0.0.1:port until interrupted, rebuilding on changes."""
    options = replace(options, base_url=f"http://127.0.0.1:{port}")
    report(build_site(options).summary())
    templates = options.templates
    watch = [options.registry] + ([templates] if templates is not None else [])
    stop = threading.Event()
    watcher = threading.Thread(target=watch_and_rebuild, args=(options, watch, stop, report), daemon=True)
    watcher.start()
    report(f"serving {options.out} at http://127.0.0.1:{port}/ (Ctrl+C to stop)")
    try:
        uvicorn.run(make_app(options.out), host="127.0.0.1", port=port, log_level="warning")
    finally:
        stop.set()
        watcher.join(timeout=5)
