"""Full-text search: run Pagefind (the `pagefind[bin]` PyPI package) over the built site.

Pagefind holds everything it indexes in memory (about 30 KB a page), so a large site is indexed as
several bundles, one Pagefind run each over a group of servers, run one after another. The search
box loads the primary bundle (`pagefind/`) and merges the others (`pagefind/shard-<slug>/`, named
after their first server) with Pagefind's `mergeIndex`.

Where one bundle ends depends only on the servers near that point (content-defined boundaries), so
editing, adding or removing a server changes the bundle it is in, rarely a neighbour, and an
incremental build re-indexes just those bundles and leaves every other bundle's files alone.
"""

from __future__ import annotations

import filecmp
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
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
    """Group (slug, indexed page count), in order, into bundles of at most shard_pages pages.

    A bundle ends after a server once it holds half of shard_pages and the server's slug hashes
    under a threshold proportional to its page count (on average a bundle then ends about a fifth
    of shard_pages further on), or when the next server would not fit. A server with more pages
    than shard_pages gets a bundle of its own. A site that fits in one bundle is indexed in one run
    over every page, as Pagefind would by default.
    """
    if shard_pages < 1:
        raise ValueError("shard_pages must be at least 1")
    if sum(count for _, count in servers) <= shard_pages:
        return [SearchShard("", ())]
    least = shard_pages // 2
    mean_run = max(1, shard_pages // 5)
    groups: list[list[str]] = []
    filled = 0
    for slug, count in servers:
        if not groups or filled + count > shard_pages:
            groups.append([])
            filled = 0
        groups[-1].append(slug)
        filled += count
        if filled >= least and _ends_bundle(slug, count, mean_run):
            filled = shard_pages + 1  # closes the bundle: the next server starts a new one
    return [
        SearchShard("" if number == 0 else f"shard-{group[0]}", tuple(group))
        for number, group in enumerate(groups)
    ]


def _ends_bundle(slug: str, count: int, mean_run: int) -> bool:
    draw = int.from_bytes(hashlib.blake2b(slug.encode(), digest_size=8).digest(), "big")
    return draw * mean_run < count * (1 << 64)


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
    canonical_filters(output)


# Pagefind (1.5) writes each filter's values, and the list of filters in the language's metadata
# file, in hash-map order, which differs from run to run; each file's name is a hash of its bytes,
# and pagefind-entry.json names the metadata file. Sorting those lists by name, then naming the
# files by a digest of their new bytes, makes a run over the same pages give the same bundle.
# Pagefind's code looks filters and values up by name and never relies on their order.
_SIGNATURE = b"pagefind_dcd"
_UNREADABLE = (
    "pagefind wrote an index this build cannot read; install the pagefind version pyproject.toml names"
)


def _cbor_head(data: bytes, at: int) -> tuple[int, int, int]:
    """Major type, argument and the offset after the head of the CBOR item at `at`."""
    first = data[at]
    info = first & 31
    if info < 24:
        return first >> 5, info, at + 1
    if info > 27:
        raise SearchIndexError(_UNREADABLE)
    size = 1 << (info - 24)
    return first >> 5, int.from_bytes(data[at + 1 : at + 1 + size], "big"), at + 1 + size


def _cbor_end(data: bytes, at: int) -> int:
    major, argument, at = _cbor_head(data, at)
    if major in (2, 3):
        return at + argument
    if major in (4, 5):
        for _ in range(argument * (2 if major == 5 else 1)):
            at = _cbor_end(data, at)
    return at


def _sort_key(data: bytes, start: int, end: int) -> tuple[str, bytes]:
    """An array item sorts by its first element's text (a filter's or value's name), then its bytes."""
    major, _, at = _cbor_head(data, start)
    if major == 4:
        major, length, at = _cbor_head(data, at)
        if major == 3:
            return data[at : at + length].decode(), data[start:end]
    return "", data[start:end]


def _sorted_array(data: bytes, at: int) -> bytes:
    """data with the items of the CBOR array at `at` in sorted order."""
    major, count, start = _cbor_head(data, at)
    if major != 4:
        raise SearchIndexError(_UNREADABLE)
    items: list[tuple[tuple[str, bytes], bytes]] = []
    end = start
    for _ in range(count):
        item_end = _cbor_end(data, end)
        items.append((_sort_key(data, end, item_end), data[end:item_end]))
        end = item_end
    return data[:start] + b"".join(raw for _, raw in sorted(items)) + data[end:]


def _sorted_list(data: bytes, position: int) -> bytes:
    """A Pagefind file's payload (a signature, then one CBOR array) with the array at `position` of
    its top-level array sorted."""
    if not data.startswith(_SIGNATURE):
        raise SearchIndexError(_UNREADABLE)
    major, count, at = _cbor_head(data, len(_SIGNATURE))
    if major != 4 or count <= position:
        raise SearchIndexError(_UNREADABLE)
    for _ in range(position):
        at = _cbor_end(data, at)
    return _sorted_array(data, at)


def _renamed(name: str, payload: bytes) -> str:
    """name's language prefix and a digest of payload as long as the hash Pagefind gave it."""
    prefix, _, old = name.rpartition("_")
    return f"{prefix}_{hashlib.blake2b(payload).hexdigest()[: len(old)]}"


def _write_gzip(path: Path, payload: bytes) -> None:
    path.write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))


def canonical_filters(bundle: Path) -> None:
    """Rewrite a Pagefind bundle's filter files, metadata and entry so the same pages give the same bytes."""
    filters = sorted((bundle / "filter").glob("*.pf_filter"))
    if not filters:
        return
    renames: dict[str, str] = {}
    for path in filters:
        # [filter name, [[value, [page number, ...]], ...]]
        payload = _sorted_list(gzip.decompress(path.read_bytes()), 1)
        new = _renamed(path.stem, payload)
        renames[path.stem] = new
        path.unlink()
        _write_gzip(path.with_name(f"{new}.pf_filter"), payload)
    entry_path = bundle / "pagefind-entry.json"
    entry = entry_path.read_text()
    unused = set(renames)
    for meta in sorted(bundle.glob("pagefind.*.pf_meta")):
        # [version, pages, index chunks, [[filter, file], ...], sorts, meta fields]
        payload = _sorted_list(gzip.decompress(meta.read_bytes()), 3)
        for old, new in renames.items():
            # Same length, so the CBOR text heads stay valid.
            found = payload.count(old.encode())
            if found > 1:
                raise SearchIndexError(_UNREADABLE)
            if found:
                payload = payload.replace(old.encode(), new.encode())
                unused.discard(old)
        old_meta = meta.name.removeprefix("pagefind.").removesuffix(".pf_meta")
        new_meta = _renamed(old_meta, payload)
        meta.unlink()
        _write_gzip(bundle / f"pagefind.{new_meta}.pf_meta", payload)
        if entry.count(f'"{old_meta}"') != 1:
            raise SearchIndexError(_UNREADABLE)
        entry = entry.replace(f'"{old_meta}"', f'"{new_meta}"')
    if unused:
        raise SearchIndexError(_UNREADABLE)
    entry_path.write_text(entry)


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


ENTRY_FILE = "pagefind-entry.json"


def bundle_key(shard: SearchShard, unit_keys: Mapping[str, str]) -> str:
    """Changes when a page the bundle indexes may have changed: its servers' unit keys, in order."""
    slugs = shard.slugs or tuple(sorted(unit_keys))
    digest = hashlib.blake2b(f"{shard.bundle}\0{_glob(shard.slugs)}".encode(), digest_size=16)
    for slug in slugs:
        digest.update(f"\n{slug}\0{unit_keys[slug]}".encode())
    return digest.hexdigest()


def bundle_dir(site: Path, bundle: str) -> Path:
    return site / BUNDLE_DIR / bundle if bundle else site / BUNDLE_DIR


def reindex(site: Path, shards: Sequence[SearchShard], stale: Sequence[SearchShard]) -> None:
    """Index the stale bundles again, in place, and remove bundles no longer planned.

    Each run writes to a scratch folder first; then only files whose bytes changed are moved in
    (each bundle's entry file last) and files the new index no longer has are deleted, so the
    files of every other bundle, and unchanged files of this one, are not touched.
    """
    scratch = site.parent / f".{site.name}.pagefind-{os.getpid()}"
    try:
        for shard in stale:
            if scratch.exists():
                shutil.rmtree(scratch)
            _index(site, scratch, _glob(shard.slugs))
            _sync_bundle(scratch, bundle_dir(site, shard.bundle), nested=not shard.bundle)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    planned = {shard.bundle for shard in shards}
    root = site / BUNDLE_DIR
    for folder in sorted(root.glob("shard-*")) if root.is_dir() else []:
        if folder.is_dir() and folder.name not in planned:
            shutil.rmtree(folder)


def _bundle_files(folder: Path, nested: bool) -> set[str]:
    """Files of the bundle in folder; for the primary bundle, not those of bundles inside it."""
    found: set[str] = set()
    for parent, dirs, names in os.walk(folder):
        if nested and Path(parent) == folder:
            dirs[:] = [d for d in dirs if not d.startswith("shard-")]
        base = Path(parent).relative_to(folder)
        found.update((base / name).as_posix() for name in names)
    return found


def _sync_bundle(new: Path, target: Path, nested: bool) -> None:
    fresh = _bundle_files(new, nested=False)
    old = _bundle_files(target, nested) if target.is_dir() else set()
    for rel in sorted(fresh, key=lambda r: (r == ENTRY_FILE, r)):
        source, dest = new / rel, target / rel
        if rel in old and filecmp.cmp(source, dest, shallow=False):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, dest)
    for rel in sorted(old - fresh):
        (target / rel).unlink()
    for parent, dirs, _ in os.walk(target, topdown=False):
        for name in dirs:
            path = Path(parent) / name
            if not (nested and path.parent == target and name.startswith("shard-")) and not any(
                path.iterdir()
            ):
                path.rmdir()
