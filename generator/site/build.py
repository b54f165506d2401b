"""Building the site: validate the registry, plan pages, render in parallel, write only what changed.

One server is one unit of work (its tool pages, server page and policy file). A unit is re-rendered
only when its key changes: the key covers the build settings (code, templates, base URL), the
server file's content and what its similar-tools lists show (`generator.site.record`). Browse pages are
keyed by the tools they list, groups of site-wide files by what they show, search bundles by their
servers' unit keys. Every file is written only when its bytes differ.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from generator.resources import templates_dir
from generator.site import urls as pages
from generator.site.fingerprint import code_fingerprint, tree_digest
from generator.site.output import (
    Manifest,
    Writer,
    delete_stale,
    discard_staging,
    mark_writing,
    read_manifest,
    staging_dir,
    swap_in,
    sweep_abandoned,
    write_manifest,
)
from generator.site.parsecache import Catalog, load_catalog
from generator.site.record import (
    SitePlan,
    catalogue_key,
    overview_key,
    page_deps,
    page_key,
    sitemap_key,
    structure_key,
    unit_deps,
    unit_key,
)
from generator.site.render import make_environment, pygments_css
from generator.site.search import (
    DEFAULT_SHARD_PAGES,
    ENTRY_FILE,
    SearchShard,
    bundle_dir,
    bundle_key,
    merge_bundles,
    plan_shards,
    reindex,
    run_pagefind,
)
from generator.site.similar import SimilarIndex, build_similar_index
from generator.site.sitemap import robots_txt, sitemap_files
from generator.site.views import home, indexes, llms, registry_json, simple, unit
from generator.site.views.context import SiteContext
from generator.site.views.listing import listing_header, listing_items, listing_page, listing_urls, listings

DEFAULT_BASE_URL = "https://example.com"
PARALLEL_MIN_UNITS = 40
ProgressFn = Callable[[str, int, int], None]
"""progress(phase, advance, total)."""


class BuildSettingsError(ValueError):
    """A build option that cannot work, e.g. a base URL that is not http(s)."""


@dataclass(frozen=True)
class BuildOptions:
    registry: Path
    out: Path
    base_url: str = DEFAULT_BASE_URL
    search: bool = True
    workers: int = 2
    cache_dir: Path | None = None
    templates: Path | None = None
    incremental: bool = True
    search_shard_pages: int = DEFAULT_SHARD_PAGES
    """Most pages one Pagefind run indexes; a larger site gets several search bundles."""

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.out.parent / f".{self.out.name}.cache"


@dataclass
class BuildResult:
    mode: str
    pages: int
    tool_pages: int
    files: int
    written: int
    deleted: int
    bytes: int
    """Full build: the site's size (search index excluded). Incremental: bytes rendered."""
    seconds: float
    parsed_files: int
    rendered_units: int
    search_seconds: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    search_bundles: tuple[int, int] | None = None
    """(bundles indexed by this build, bundles in the site)."""

    def summary(self) -> str:
        search = ""
        if self.search_seconds is not None:
            search = f", search index {self.search_seconds:.1f} s"
            if self.search_bundles is not None and self.search_bundles[1] > 1:
                search += f" ({self.search_bundles[0]} of {self.search_bundles[1]} bundles)"
        what = "site size" if self.mode == "full" else "rendered"
        return (
            f"{self.mode} build: {self.pages:,} pages ({self.tool_pages:,} tool pages) in "
            f"{self.seconds:.2f} s, {self.written:,} files written, {self.deleted:,} removed, "
            f"{what} {self.bytes / 1e6:.1f} MB{search}"
        )


def normalise_base_url(url: str) -> tuple[str, str]:
    """(absolute base without trailing slash, path prefix for links)."""
    parts = urlsplit(url)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.netloc
        or parts.query
        or parts.fragment
        or any(ch in url for ch in "\"'<> \\`")
    ):
        raise BuildSettingsError(
            f"--base-url {url!r} must be an http(s) URL such as https://tools.example.com"
        )
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}", path


def settings_key(options: BuildOptions, templates: Path, absolute: str) -> str:
    """What every page depends on: the code, the templates, the base URL and whether search is on."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (code_fingerprint(), tree_digest(templates), absolute, str(options.search)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


# Worker state: set in the parent before the pool forks, so workers share it copy-on-write.
_CTX: SiteContext | None = None
_ROOT: Path | None = None
_PREVIOUS: dict[str, str] | None = None
_STOP: multiprocessing.synchronize.Event | None = None  # shared with the pool's workers

STOP_SETTLE_SECONDS = 0.3
"""How long `stop_rendering` gives workers to finish the page they are writing."""


def stop_rendering() -> None:
    """Make the pool's workers skip every unit not yet started (a build stopped by a signal).

    Waits briefly, so that a page being written when the flag was set is complete before the
    caller removes the staging folder; the workers themselves exit once the build process has.
    """
    if _STOP is not None:
        _STOP.set()
        time.sleep(STOP_SETTLE_SECONDS)


def _render_unit_job(slug: str) -> tuple[str, dict[str, str], int, int]:
    assert _CTX is not None and _ROOT is not None
    if _STOP is not None and _STOP.is_set():
        return slug, {}, 0, 0
    writer = Writer(_ROOT, _PREVIOUS)
    for rel, data in unit.render_unit(_CTX, slug):
        writer.write(rel, data)
    return slug, writer.files, writer.written, writer.size


@contextmanager
def _unit_results(slugs: list[str], workers: int) -> Iterator[Iterator[tuple[str, dict[str, str], int, int]]]:
    """Render units; with a pool, the workers start at once and the caller is free meanwhile."""
    if workers <= 1 or len(slugs) < PARALLEL_MIN_UNITS:
        yield (_render_unit_job(slug) for slug in slugs)
        return
    global _STOP
    context = multiprocessing.get_context("fork")
    chunk = max(1, min(64, len(slugs) // (workers * 8)))
    _STOP = context.Event()
    try:
        with context.Pool(workers, initializer=_exit_with_parent) as pool:
            yield pool.imap_unordered(_render_unit_job, slugs, chunksize=chunk)
    finally:
        _STOP = None


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


def build_site(options: BuildOptions, progress: ProgressFn | None = None) -> BuildResult:
    """Build the site. Raises RegistryError (nothing written) or BuildSettingsError."""
    global _CTX, _ROOT, _PREVIOUS
    started = time.perf_counter()
    phases: dict[str, float] = {}
    absolute, base_path = normalise_base_url(options.base_url)
    templates = options.templates or templates_dir()
    cache = options.cache

    def tick(phase: str, advance: int, total: int) -> None:
        if progress is not None:
            progress(phase, advance, total)

    file_total = len(list(options.registry.glob("*.yaml"))) if options.registry.is_dir() else 0
    catalog: Catalog = load_catalog(
        options.registry, cache, options.workers, lambda n: tick("Loading registry", n, file_total)
    )
    phases["load"] = time.perf_counter() - started

    mark = time.perf_counter()
    settings = settings_key(options, templates, absolute)
    shards = plan_shards(
        [(server.slug, server.tool_count + 1) for server in catalog.servers], options.search_shard_pages
    )
    previous = (
        read_manifest(cache, options.out, settings) if options.incremental and options.out.is_dir() else None
    )
    plan, similar, changes = _plan(catalog, previous)
    ctx = SiteContext(
        make_environment(templates, cache / "templates"),
        catalog,
        similar,
        absolute,
        base_path,
        options.search,
        merge_bundles(shards) if options.search else (),
    )
    keys = _unit_keys(catalog, settings, plan, previous, changes)
    phases["plan"] = time.perf_counter() - mark

    sweep_abandoned(options.out)
    if previous is None:
        mode, root = "full", staging_dir(options.out)
        todo = [s.slug for s in catalog.servers]
        prev_files: dict[str, str] | None = None
    else:
        mode, root = "incremental", options.out
        todo = [slug for slug, key in keys.items() if _previous_key(previous, slug) != key]
        prev_files = previous.files
        mark_writing(cache)
    try:
        mark = time.perf_counter()
        _CTX, _ROOT, _PREVIOUS = ctx, root, prev_files
        files: dict[str, str] = {}
        units: dict[str, list[object]] = {}
        written = 0
        size = 0
        if previous is not None:
            for slug, key in keys.items():
                if slug not in todo:
                    unit_files = previous.units[slug][1]
                    units[slug] = [key, unit_files]
                    for rel in unit_files:
                        files[rel] = previous.files[rel]
        with _unit_results(todo, options.workers) as results:
            # Site-wide pages are rendered here while the workers (if any) render the units.
            site_writer = Writer(root, prev_files)
            page_keys = _write_site_pages(ctx, site_writer, settings, plan, previous, changes, units)
            files.update(site_writer.files)
            written += site_writer.written
            size += site_writer.size
            phases["site pages"] = time.perf_counter() - mark
            for slug, unit_files, unit_written, unit_bytes in results:
                units[slug] = [keys[slug], sorted(unit_files)]
                files.update(unit_files)
                written += unit_written
                size += unit_bytes
                tick(
                    "Rendering pages",
                    catalog.server(slug).tool_count + 1,
                    catalog.tool_count + len(catalog.servers),
                )
        phases["units"] = time.perf_counter() - mark
        deleted = 0
        if previous is not None:
            stale = [rel for rel in previous.files if rel not in files]
            deleted = delete_stale(root, stale)

        search_seconds = None
        search_runs = 0
        if options.search:
            mark = time.perf_counter()
            tick("Indexing for search", 0, 0)
            search_runs = _update_search(root, shards, keys, previous, units)
            search_seconds = time.perf_counter() - mark
        elif (root / "pagefind").exists():
            shutil.rmtree(root / "pagefind")
    except BaseException:
        if previous is None:
            discard_staging(root)
        raise
    finally:
        _CTX, _ROOT, _PREVIOUS = None, None, None

    if previous is None:
        swap_in(root, options.out)
    write_manifest(
        cache,
        Manifest(str(options.out.resolve()), settings, "complete", files, units, page_keys, plan.dump()),
    )
    page_count = sum(1 for rel in files if rel.endswith(".html"))
    tool_pages = catalog.tool_count
    return BuildResult(
        mode,
        page_count,
        tool_pages,
        len(files),
        written,
        deleted,
        size,
        time.perf_counter() - started,
        catalog.parsed,
        len(todo),
        search_seconds,
        phases,
        (search_runs, len(shards)) if options.search else None,
    )


def _update_search(
    root: Path,
    shards: list[SearchShard],
    unit_keys: dict[str, str],
    previous: Manifest | None,
    units: dict[str, list[object]],
) -> int:
    """Index the bundles whose pages may have changed (all of them in a full build); how many ran."""
    keys = {shard.bundle: bundle_key(shard, unit_keys) for shard in shards}
    for bundle, key in keys.items():
        units[f"@search:{bundle}"] = [key, []]
    if previous is None:
        run_pagefind(root, in_place=True, shards=shards)
        return len(shards)
    stale = [
        shard
        for shard in shards
        if _previous_key(previous, f"@search:{shard.bundle}") != keys[shard.bundle]
        or not (bundle_dir(root, shard.bundle) / ENTRY_FILE).is_file()
    ]
    reindex(root, shards, stale)
    return len(stale)


def _previous_key(previous: Manifest | None, name: str) -> str | None:
    entry = previous.units.get(name) if previous is not None else None
    return str(entry[0]) if entry else None


@dataclass(frozen=True)
class Changes:
    """What changed since the previous build, when its dependency record still holds."""

    files: frozenset[str]
    """Servers whose registry file changed."""
    displays: frozenset[str]
    """Servers whose tools other pages show differently."""


def _plan(catalog: Catalog, previous: Manifest | None) -> tuple[SitePlan, SimilarIndex, Changes | None]:
    """This build's dependency record, its similar-tools index, and what changed.

    While the registry's structure is what the previous build saw, its record and rankings hold;
    otherwise both are computed again and the changes are None (every key is computed).
    """
    displays = {server.slug: server.display for server in catalog.servers}
    hashes = {server.slug: server.file_hash for server in catalog.servers}
    structure = structure_key(catalog)
    before = SitePlan.load(previous.plan) if previous is not None else None
    if before is not None and before.structure == structure:
        similar = SimilarIndex.from_ids(before.similar, catalog.tool_ref)
        changes = Changes(
            frozenset(slug for slug, digest in hashes.items() if before.file_hashes.get(slug) != digest),
            frozenset(slug for slug, display in displays.items() if before.displays.get(slug) != display),
        )
        kept = SitePlan(structure, hashes, displays, before.units, before.pages, before.similar)
        return kept, similar, changes
    similar = build_similar_index(catalog.tools())
    fresh = SitePlan(structure, hashes, displays, unit_deps(catalog, similar), {}, similar.ids())
    return fresh, similar, None


def _unit_keys(
    catalog: Catalog, settings: str, plan: SitePlan, previous: Manifest | None, changes: Changes | None
) -> dict[str, str]:
    keys: dict[str, str] = {}
    for server in catalog.servers:
        slug = server.slug
        deps = plan.units[slug]
        old = _previous_key(previous, slug)
        if (
            changes is not None
            and old is not None
            and slug not in changes.files
            and changes.displays.isdisjoint(deps[1])
        ):
            keys[slug] = old
        else:
            keys[slug] = unit_key(settings, server.file_hash, deps, plan.displays)
    return keys


def _write_site_pages(
    ctx: SiteContext,
    writer: Writer,
    settings: str,
    plan: SitePlan,
    previous: Manifest | None,
    changes: Changes | None,
    units: dict[str, list[object]],
) -> dict[str, str]:
    """Home, indexes, browse pages, sitemap, robots, 404, llms.txt, registry.json, assets.

    Groups of site-wide files are keyed like units (under names starting with '@', which no slug
    can) and rendered only when their key changed; browse pages are keyed one by one.
    """
    catalog = ctx.catalog

    def group(name: str, key: str, produce: Callable[[], Iterable[tuple[str, bytes]]]) -> None:
        entry = previous.units.get(name) if previous is not None else None
        if previous is not None and entry and entry[0] == key and all(r in previous.files for r in entry[1]):
            for rel in entry[1]:
                writer.files[rel] = previous.files[rel]
            units[name] = [key, entry[1]]
            return
        before = set(writer.files)
        for rel, data in produce():
            writer.write(rel, data)
        units[name] = [key, sorted(set(writer.files) - before)]

    group("@overview", overview_key(settings, catalog, ctx.search_merge), lambda: _overview_files(ctx))
    page_keys = _write_listing_pages(ctx, writer, plan, previous, changes)
    group("@sitemap", sitemap_key(settings, catalog), lambda: _sitemap_files(ctx))
    group(
        "@catalogue",
        catalogue_key(settings, catalog),
        lambda: [
            ("registry.json", "".join(registry_json.registry_json_chunks(catalog, ctx.absolute)).encode())
        ],
    )
    writer.write_text("robots.txt", robots_txt(ctx.absolute))
    _write_assets(ctx, writer)
    return page_keys


def _overview_files(ctx: SiteContext) -> Iterator[tuple[str, bytes]]:
    yield "index.html", home.home_page(ctx)
    yield from indexes.servers_pages(ctx)
    yield "categories/index.html", indexes.index_page(ctx, "category")
    yield "risk/index.html", indexes.index_page(ctx, "risk")
    yield (
        "search/index.html",
        simple.simple_page(
            ctx, "search.html", pages.search_url(), "Search", "Search every MCP tool, server and policy."
        ),
    )
    yield (
        pages.output_path(pages.policy_reference_url()),
        simple.simple_page(
            ctx,
            "policy-language.html",
            pages.policy_reference_url(),
            "Policy language",
            "The rules Intercept policies use: allow, deny, rate limits and argument checks.",
        ),
    )
    yield "404.html", simple.not_found_page(ctx)
    yield "llms.txt", llms.llms_txt(ctx).encode("utf-8")


def _write_listing_pages(
    ctx: SiteContext,
    writer: Writer,
    plan: SitePlan,
    previous: Manifest | None,
    changes: Changes | None,
) -> dict[str, str]:
    """Browse pages; with a kept record, only pages listing a changed server are keyed again."""
    page_keys: dict[str, str] = {}
    old_keys = previous.pages if previous is not None else {}
    old_files = previous.files if previous is not None else {}

    def reuse(rel: str, key: str) -> bool:
        if old_keys.get(rel) == key and rel in old_files:
            page_keys[rel] = key
            writer.files[rel] = old_files[rel]
            return True
        return False

    if changes is not None and plan.pages:
        todo: dict[str, str] = {}
        for rel, deps in plan.pages.items():
            if changes.displays.isdisjoint(deps[1]) and reuse(rel, old_keys.get(rel, "")):
                continue
            key = page_key(deps, plan.displays)
            if not reuse(rel, key):
                todo[rel] = key
        if todo:
            for listing in listings(ctx.catalog):
                for number in range(1, listing.pages + 1):
                    rel = pages.output_path(listing.url(number))
                    if rel in todo:
                        page_keys[rel] = todo[rel]
                        writer.write(rel, listing_page(ctx, listing, number))
        return page_keys
    for listing in listings(ctx.catalog):
        header = listing_header(listing)
        for number in range(1, listing.pages + 1):
            rel = pages.output_path(listing.url(number))
            items = listing_items(listing, number)
            deps = page_deps(header, listing.pages, ((t.slug, t.name) for t in items))
            plan.pages[rel] = deps
            key = page_key(deps, plan.displays)
            if not reuse(rel, key):
                page_keys[rel] = key
                writer.write(rel, listing_page(ctx, listing, number))
    return page_keys


def _sitemap_files(ctx: SiteContext) -> Iterator[tuple[str, bytes]]:
    catalog = ctx.catalog
    absolute = ctx.absolute
    urls: list[tuple[str, str | None]] = [
        (absolute + p, None)
        for p in (
            "/",
            pages.servers_url(),
            pages.categories_url(),
            pages.risks_url(),
            pages.policy_reference_url(),
        )
    ]
    server_pages = pages.page_count(len(catalog.servers), pages.SERVERS_PAGE_SIZE)
    urls.extend((absolute + pages.servers_url(n), None) for n in range(2, server_pages + 1))
    urls.extend((absolute + url, None) for url in listing_urls(catalog))
    for server in catalog.servers:
        urls.append((absolute + pages.server_url(server.slug), server.obtained_at))
        for tool in server.tools:
            urls.append((absolute + pages.tool_url(server.slug, tool.name), server.obtained_at))
    for rel, text in sitemap_files(urls, absolute).items():
        yield rel, text.encode("utf-8")


def _write_assets(ctx: SiteContext, writer: Writer) -> None:
    assets = Path(ctx.env.loader.searchpath[0]) / "assets"  # type: ignore[union-attr]
    for path in sorted(p for p in assets.rglob("*") if p.is_file()):
        writer.write(f"assets/{path.relative_to(assets).as_posix()}", path.read_bytes())
    writer.write_text("assets/pygments.css", pygments_css())


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
