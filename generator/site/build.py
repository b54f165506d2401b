"""Building the site: validate the registry, plan the build, render in parallel, write only what changed.

`build_site` runs the steps in order: load the registry through the parse cache; plan (the build
settings, the previous build's manifest, the dependency record and every unit's key); pick where
to write (a staging folder for a full build, the site itself for an incremental one); render the
site-wide files here while the workers render the units whose key changed; delete what the site no
longer has; index for search; swap a full build in and save the manifest. Which files exist and
what each key covers is the page plan (`generator.site.plan`).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from generator.resources import templates_dir
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
from generator.site.plan import GROUPS, FileGroup, fixed_files, listing_pages
from generator.site.record import Changes, DependencyRecord, compare, page_key, unit_keys
from generator.site.render import make_environment
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
from generator.site.usage import DEFAULT_INSTALL_COMMAND
from generator.site.views.context import SiteContext
from generator.site.views.listing import listing_page
from generator.site.workers import UnitRenderer, rendered_units

DEFAULT_BASE_URL = "https://example.com"
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
    install_command: str = DEFAULT_INSTALL_COMMAND
    """How the "Use it" blocks tell readers to install Intercept."""

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
    parts = (
        code_fingerprint(),
        tree_digest(templates),
        absolute,
        str(options.search),
        options.install_command,
    )
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


@dataclass
class _Plan:
    """What one build renders, decided before anything is written."""

    options: BuildOptions
    catalog: Catalog
    settings: str
    ctx: SiteContext
    previous: Manifest | None
    """The previous build's manifest, when an incremental build on top of it is safe."""
    record: DependencyRecord
    changes: Changes | None
    unit_keys: dict[str, str]
    shards: list[SearchShard]

    @property
    def mode(self) -> str:
        return "full" if self.previous is None else "incremental"

    @property
    def previous_files(self) -> dict[str, str] | None:
        return self.previous.files if self.previous is not None else None

    def previous_key(self, name: str) -> str | None:
        entry = self.previous.units.get(name) if self.previous is not None else None
        return str(entry[0]) if entry else None

    def todo(self) -> list[str]:
        """The units to render: every one in a full build, those whose key changed otherwise."""
        return [slug for slug, key in self.unit_keys.items() if self.previous_key(slug) != key]


@dataclass
class _Output:
    """Every file of the new site (written or kept) and the manifest's record of what made it."""

    files: dict[str, str] = field(default_factory=dict)
    units: dict[str, list[object]] = field(default_factory=dict)
    page_keys: dict[str, str] = field(default_factory=dict)
    written: int = 0
    size: int = 0

    def add(self, files: dict[str, str], written: int, size: int) -> None:
        self.files.update(files)
        self.written += written
        self.size += size


def build_site(options: BuildOptions, progress: ProgressFn | None = None) -> BuildResult:
    """Build the site. Raises RegistryError (nothing written) or BuildSettingsError."""
    started = time.perf_counter()
    phases: dict[str, float] = {}

    def tick(phase: str, advance: int, total: int) -> None:
        if progress is not None:
            progress(phase, advance, total)

    absolute, base_path = normalise_base_url(options.base_url)
    catalog = _load_registry(options, tick)
    phases["load"] = time.perf_counter() - started
    mark = time.perf_counter()
    plan = _plan(options, catalog, absolute, base_path)
    todo = plan.todo()
    phases["plan"] = time.perf_counter() - mark
    root = _open_target(plan)
    output = _Output()
    try:
        _render(plan, root, todo, output, tick, phases)
        deleted = _delete_stale(plan, root, output)
        search = _index_search(plan, root, output, tick)
    except BaseException:
        if plan.previous is None:
            discard_staging(root)
        raise
    _publish(plan, root, output)
    return BuildResult(
        plan.mode,
        sum(1 for rel in output.files if rel.endswith(".html")),
        catalog.tool_count,
        len(output.files),
        output.written,
        deleted,
        output.size,
        time.perf_counter() - started,
        catalog.parsed,
        len(todo),
        search[1] if search is not None else None,
        phases,
        (search[0], len(plan.shards)) if search is not None else None,
    )


def _load_registry(options: BuildOptions, tick: ProgressFn) -> Catalog:
    file_total = len(list(options.registry.glob("*.yaml"))) if options.registry.is_dir() else 0
    return load_catalog(
        options.registry, options.cache, options.workers, lambda n: tick("Loading registry", n, file_total)
    )


def _plan(options: BuildOptions, catalog: Catalog, absolute: str, base_path: str) -> _Plan:
    """The build settings, the previous build if it can be built on, and every unit's key."""
    templates = options.templates or templates_dir()
    settings = settings_key(options, templates, absolute)
    shards = plan_shards(
        [(server.slug, server.tool_count + 1) for server in catalog.servers], options.search_shard_pages
    )
    previous = None
    if options.incremental and options.out.is_dir():
        previous = read_manifest(options.cache, options.out, settings)
    record, similar, changes = compare(catalog, previous.record if previous is not None else None)
    ctx = SiteContext(
        make_environment(templates, options.cache / "templates"),
        catalog,
        similar,
        absolute,
        base_path,
        options.search,
        merge_bundles(shards) if options.search else (),
        options.install_command,
    )
    kept = {name: str(entry[0]) for name, entry in previous.units.items() if entry} if previous else {}
    keys = unit_keys(catalog, settings, record, kept, changes)
    return _Plan(options, catalog, settings, ctx, previous, record, changes, keys, shards)


def _open_target(plan: _Plan) -> Path:
    """Where this build writes: a fresh staging folder (full), or the site itself (incremental)."""
    out = plan.options.out
    sweep_abandoned(out)
    if plan.previous is None:
        return staging_dir(out)
    mark_writing(plan.options.cache)
    return out


def _render(
    plan: _Plan,
    root: Path,
    todo: list[str],
    output: _Output,
    tick: ProgressFn,
    phases: dict[str, float],
) -> None:
    """Render the units in todo and the site-wide files; keep every other unit's files as they are."""
    mark = time.perf_counter()
    rendering = set(todo)
    if plan.previous is not None:
        for slug, key in plan.unit_keys.items():
            if slug not in rendering:
                unit_files = plan.previous.units[slug][1]
                output.units[slug] = [key, unit_files]
                for rel in unit_files:
                    output.files[rel] = plan.previous.files[rel]
    catalog = plan.catalog
    renderer = UnitRenderer(plan.ctx, root, plan.previous_files)
    with rendered_units(renderer, todo, plan.options.workers) as results:
        # Site-wide files are rendered here while the workers (if any) render the units.
        writer = Writer(root, plan.previous_files)
        _write_site_files(plan, writer, output)
        output.add(writer.files, writer.written, writer.size)
        phases["site pages"] = time.perf_counter() - mark
        total = catalog.tool_count + len(catalog.servers)
        for unit in results:
            output.units[unit.slug] = [plan.unit_keys[unit.slug], sorted(unit.files)]
            output.add(unit.files, unit.written, unit.size)
            tick("Rendering pages", catalog.server(unit.slug).tool_count + 1, total)
    phases["units"] = time.perf_counter() - mark


def _write_site_files(plan: _Plan, writer: Writer, output: _Output) -> None:
    """The groups of site-wide files and the browse pages whose key changed, and the fixed files."""
    for group in GROUPS:
        _write_group(plan, group, writer, output)
    output.page_keys = _write_listing_pages(plan, writer)
    for rel, data in fixed_files(plan.ctx):
        writer.write(rel, data)


def _write_group(plan: _Plan, group: FileGroup, writer: Writer, output: _Output) -> None:
    """Render a group of files, or keep the previous build's when the group's key is unchanged."""
    key = group.key(plan.settings, plan.ctx)
    previous = plan.previous
    entry = previous.units.get(group.name) if previous is not None else None
    if previous is not None and entry and entry[0] == key and all(r in previous.files for r in entry[1]):
        for rel in entry[1]:
            writer.files[rel] = previous.files[rel]
        output.units[group.name] = [key, entry[1]]
        return
    before = set(writer.files)
    for rel, data in group.files(plan.ctx):
        writer.write(rel, data)
    output.units[group.name] = [key, sorted(set(writer.files) - before)]


def _write_listing_pages(plan: _Plan, writer: Writer) -> dict[str, str]:
    """Browse pages; with a kept record, only pages listing a changed server are keyed again."""
    record, changes, ctx = plan.record, plan.changes, plan.ctx
    page_keys: dict[str, str] = {}
    old_keys = plan.previous.pages if plan.previous is not None else {}
    old_files = plan.previous.files if plan.previous is not None else {}

    def reuse(rel: str, key: str) -> bool:
        if old_keys.get(rel) == key and rel in old_files:
            page_keys[rel] = key
            writer.files[rel] = old_files[rel]
            return True
        return False

    if changes is not None and record.pages:
        todo: dict[str, str] = {}
        for rel, deps in record.pages.items():
            if changes.displays.isdisjoint(deps[1]) and reuse(rel, old_keys.get(rel, "")):
                continue
            key = page_key(deps, record.displays)
            if not reuse(rel, key):
                todo[rel] = key
        if todo:
            for page in listing_pages(ctx.catalog):
                if page.rel in todo:
                    page_keys[page.rel] = todo[page.rel]
                    writer.write(page.rel, listing_page(ctx, page.listing, page.number))
        return page_keys
    for page in listing_pages(ctx.catalog):
        deps = page.deps()
        record.pages[page.rel] = deps
        key = page_key(deps, record.displays)
        if not reuse(page.rel, key):
            page_keys[page.rel] = key
            writer.write(page.rel, listing_page(ctx, page.listing, page.number))
    return page_keys


def _delete_stale(plan: _Plan, root: Path, output: _Output) -> int:
    """Remove what the previous build wrote and this one no longer has."""
    if plan.previous is None:
        return 0
    return delete_stale(root, [rel for rel in plan.previous.files if rel not in output.files])


def _index_search(plan: _Plan, root: Path, output: _Output, tick: ProgressFn) -> tuple[int, float] | None:
    """(bundles indexed, seconds), or None when search is off (any old index is removed)."""
    if not plan.options.search:
        if (root / "pagefind").exists():
            shutil.rmtree(root / "pagefind")
        return None
    mark = time.perf_counter()
    tick("Indexing for search", 0, 0)
    keys = {shard.bundle: bundle_key(shard, plan.unit_keys) for shard in plan.shards}
    for bundle, key in keys.items():
        output.units[f"@search:{bundle}"] = [key, []]
    if plan.previous is None:
        run_pagefind(root, in_place=True, shards=plan.shards)
        return len(plan.shards), time.perf_counter() - mark
    stale = [
        shard
        for shard in plan.shards
        if plan.previous_key(f"@search:{shard.bundle}") != keys[shard.bundle]
        or not (bundle_dir(root, shard.bundle) / ENTRY_FILE).is_file()
    ]
    reindex(root, plan.shards, stale)
    return len(stale), time.perf_counter() - mark


def _publish(plan: _Plan, root: Path, output: _Output) -> None:
    """Swap a full build in, then record what the site now holds for the next build."""
    options = plan.options
    if plan.previous is None:
        swap_in(root, options.out)
    manifest = Manifest(
        str(options.out.resolve()),
        plan.settings,
        "complete",
        output.files,
        output.units,
        output.page_keys,
        plan.record.dump(),
    )
    write_manifest(options.cache, manifest)
