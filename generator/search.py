"""Full-text search: run Pagefind (the `pagefind[bin]` PyPI package) over the built site.

Pagefind holds everything it indexes in memory (about 30 KB a page), so a large site is indexed as
several bundles, one Pagefind run each over a group of servers, run one after another. The search
box loads the primary bundle (`pagefind/`) and merges the others (`pagefind/shard-N/`) with
Pagefind's `mergeIndex`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BUNDLE_DIR = "pagefind"
DEFAULT_SHARD_PAGES = 10_000
"""Indexed pages per Pagefind run: about 0.3 GB of Pagefind memory."""


class SearchIndexError(RuntimeError):
    """Pagefind failed; the message carries its output."""


@dataclass(frozen=True)
class SearchShard:
    bundle: str
    """Bundle folder inside pagefind/: '' for the primary bundle, else 'shard-N'."""
    slugs: tuple[str, ...]
    """Servers whose pages this bundle indexes; empty means every page (an unsharded site)."""


def plan_shards(servers: Sequence[tuple[str, int]], shard_pages: int) -> list[SearchShard]:
    """Group (slug, indexed page count) in order into bundles of at most shard_pages pages.

    A server with more pages than shard_pages gets a bundle of its own. A site that fits in one
    bundle is indexed in one run over every page, as Pagefind would by default.
    """
    if shard_pages < 1:
        raise ValueError("shard_pages must be at least 1")
    groups: list[list[str]] = []
    filled = shard_pages
    for slug, count in servers:
        if filled + count > shard_pages:
            groups.append([])
            filled = 0
        groups[-1].append(slug)
        filled += count
    if len(groups) <= 1:
        return [SearchShard("", ())]
    return [
        SearchShard("" if number == 1 else f"shard-{number}", tuple(group))
        for number, group in enumerate(groups, start=1)
    ]


def merge_bundles(shards: Sequence[SearchShard]) -> tuple[str, ...]:
    """The bundle folders the search box merges into the primary one."""
    return tuple(shard.bundle for shard in shards if shard.bundle)


def _glob(slugs: tuple[str, ...]) -> str | None:
    if not slugs:
        return None
    # Slugs are validated to [a-z0-9-], so they need no glob escaping.
    folders = slugs[0] if len(slugs) == 1 else "{" + ",".join(slugs) + "}"
    return f"servers/{folders}/**/*.{{html}}"


def _index(site: Path, output: Path, glob: str | None) -> None:
    # Settings go in a config file in a scratch working folder: a shard's glob can be longer than
    # one command-line argument may be, and no pagefind.yml from the caller's folder leaks in.
    config: dict[str, str] = {"site": str(site.resolve()), "output_path": str(output.resolve())}
    if glob is not None:
        config["glob"] = glob
    with tempfile.TemporaryDirectory(prefix="intercept-pagefind-") as scratch:
        (Path(scratch) / "pagefind.json").write_text(json.dumps(config))
        result = subprocess.run(
            [sys.executable, "-m", "pagefind", "--silent"],
            capture_output=True,
            text=True,
            check=False,
            cwd=scratch,
        )
    if result.returncode != 0:
        raise SearchIndexError(
            f"pagefind failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
        )


def run_pagefind(site: Path, in_place: bool = True, shards: Sequence[SearchShard] = ()) -> None:
    """Index site into site/pagefind, one Pagefind run per shard (no shards: one run over everything).

    Not in place: index elsewhere, then swap the folder in whole.
    """
    target = site / BUNDLE_DIR
    output = target if in_place else site.parent / f".{site.name}.pagefind-{os.getpid()}"
    if output.exists():
        shutil.rmtree(output)
    try:
        # The primary bundle first: its folder holds the others.
        for shard in shards or [SearchShard("", ())]:
            _index(site, output / shard.bundle if shard.bundle else output, _glob(shard.slugs))
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)
        raise
    if not in_place:
        old = site.parent / f".{site.name}.pagefind-old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(output, target)
        shutil.rmtree(old, ignore_errors=True)
