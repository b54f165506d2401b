"""Rendering units, in the build process or in a pool of forked workers, and stopping the workers early.

A worker's whole state is one `UnitRenderer`, handed to it by the pool's initializer. The pool forks,
so the renderer (with the site context and its catalogue) reaches the workers without being pickled,
and they share its memory with the build process copy-on-write.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from generator.site.output import Writer
from generator.site.plan import unit_files
from generator.site.views.context import SiteContext

PARALLEL_MIN_UNITS = 40
"""Fewer units than this render in the build process: starting workers would cost more."""

STOP_SETTLE_SECONDS = 0.3
"""How long `stop_rendering` gives workers to finish the page they are writing."""


class RenderedUnit(NamedTuple):
    slug: str
    files: dict[str, str]
    """Path to content hash of every file the unit produced."""
    written: int
    size: int


@dataclass(frozen=True)
class UnitRenderer:
    """Renders one unit at a time into root; a worker's whole state."""

    ctx: SiteContext
    root: Path
    previous: dict[str, str] | None
    """The previous build's file hashes: files whose bytes are unchanged are not rewritten."""
    stop: multiprocessing.synchronize.Event | None = None
    """Set when the build is stopped: units not yet started are skipped."""

    def __call__(self, slug: str) -> RenderedUnit:
        if self.stop is not None and self.stop.is_set():
            return RenderedUnit(slug, {}, 0, 0)
        writer = Writer(self.root, self.previous)
        for rel, data in unit_files(self.ctx, slug):
            writer.write(rel, data)
        return RenderedUnit(slug, writer.files, writer.written, writer.size)


_worker_renderer: UnitRenderer | None = None
"""In a pool worker, its renderer (set by `_start_worker`); None in the build process."""

_running_stops: list[multiprocessing.synchronize.Event] = []
"""In the build process, the stop flags of the pools rendering now, for `stop_rendering`."""


@contextmanager
def rendered_units(
    renderer: UnitRenderer, slugs: list[str], workers: int
) -> Iterator[Iterator[RenderedUnit]]:
    """Render units; with a pool, the workers start at once and the caller is free meanwhile."""
    if workers <= 1 or len(slugs) < PARALLEL_MIN_UNITS:
        yield (renderer(slug) for slug in slugs)
        return
    context = multiprocessing.get_context("fork")
    chunk = max(1, min(64, len(slugs) // (workers * 8)))
    stop = context.Event()
    _running_stops.append(stop)
    try:
        with context.Pool(
            workers, initializer=_start_worker, initargs=(replace(renderer, stop=stop),)
        ) as pool:
            yield pool.imap_unordered(_render_in_worker, slugs, chunksize=chunk)
    finally:
        _running_stops.remove(stop)


def stop_rendering() -> None:
    """Make the pools' workers skip every unit not yet started (a build stopped by a signal).

    Waits briefly, so that a page being written when the flag was set is complete before the
    caller removes the staging folder; the workers themselves exit once the build process has.
    """
    if _running_stops:
        for stop in _running_stops:
            stop.set()
        time.sleep(STOP_SETTLE_SECONDS)


def _start_worker(renderer: UnitRenderer) -> None:
    global _worker_renderer
    _worker_renderer = renderer
    _exit_with_parent()


def _render_in_worker(slug: str) -> RenderedUnit:
    assert _worker_renderer is not None
    return _worker_renderer(slug)


def _exit_with_parent() -> None:
    """In a pool worker: exit if the build process is gone (killed), instead of waiting forever.

    A worker left behind would keep the build's stdout open, so whoever waits for the build's
    output would wait too.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
