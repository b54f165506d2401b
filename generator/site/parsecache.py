"""The registry as the site needs it: a compact catalogue of every tool, loaded through a parse cache.

Parsing YAML dominates a cold build (about 0.2 ms per tool), so each validated server is cached,
keyed by its file's content hash, next to the output. A rebuild parses only files whose size or
mtime changed, and holds only compact `ToolRef`s for the whole registry in memory; full `Server`
models are loaded one server at a time by the page renderers.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from generator.catalog.load import RegistryError, RegistryProblem, load_server_file
from generator.catalog.models import CATEGORY_ORDER, RISK_ORDER, Category, Risk, Server, first_sentence
from generator.catalog.risk import assess
from generator.site.fingerprint import code_fingerprint
from generator.site.views.registry_json import catalogue_entry
from intercept.util.errors import LocatedError


class ToolRef(NamedTuple):
    """One tool, as other pages mention it."""

    slug: str
    server_name: str
    name: str
    category: Category
    risk: Risk
    one_line: str


PackedTool = tuple[str, str, str, str]
"""(name, category value, risk value, one-line summary): a ToolRef as the index stores it."""


@dataclass(slots=True, eq=False)
class ServerRef:
    """One server as other pages mention it; its ToolRefs are built on first use.

    An incremental build reads every server's entry but touches the tools of only a few, so the
    index keeps tools packed as plain strings.
    """

    slug: str
    name: str
    summary: str
    file_hash: str
    obtained_at: str
    packed_tools: tuple[PackedTool, ...]
    """Sorted by tool name."""
    catalogue_json: str
    """This server's entry in registry.json, serialised once when the file is parsed."""
    structure: str
    """Digest of what ranks and sorts this server's tools elsewhere: names, categories, risks."""
    display: str
    """Digest of what other pages show of its tools: server name, tool names, categories, risks, summaries."""
    status: str = "active"
    """active, deprecated or archived: server lists mark the last two."""
    hints: tuple[str, ...] = ()
    """The annotation hints (`HINTS`) at least one of its tools sets to true, for the index's filters."""
    _tools: tuple[ToolRef, ...] | None = None

    @property
    def tools(self) -> tuple[ToolRef, ...]:
        if self._tools is None:
            slug, name = self.slug, self.name
            self._tools = tuple(
                ToolRef(slug, name, tool, _CATEGORIES[cat], _RISKS[risk], line)
                for tool, cat, risk, line in self.packed_tools
            )
        return self._tools

    @property
    def tool_count(self) -> int:
        return len(self.packed_tools)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (ServerRef.unpack, (self.pack(),))

    def pack(self) -> tuple[Any, ...]:
        """Plain strings and tuples only, so the index can be saved with marshal."""
        return (
            self.slug,
            self.name,
            self.summary,
            self.file_hash,
            self.obtained_at,
            self.packed_tools,
            self.catalogue_json,
            self.structure,
            self.display,
            self.status,
            self.hints,
        )

    @staticmethod
    def unpack(data: tuple[Any, ...]) -> ServerRef:
        return ServerRef(*data)

    @property
    def category_counts(self) -> dict[Category, int]:
        counts = dict.fromkeys(CATEGORY_ORDER, 0)
        for _, category, _, _ in self.packed_tools:
            counts[_CATEGORIES[category]] += 1
        return counts

    @property
    def risk_counts(self) -> dict[Risk, int]:
        counts = dict.fromkeys(RISK_ORDER, 0)
        for _, _, risk, _ in self.packed_tools:
            counts[_RISKS[risk]] += 1
        return counts

    @property
    def categories(self) -> tuple[str, ...]:
        """The category values its tools have, in display order."""
        present = {category for _, category, _, _ in self.packed_tools}
        return tuple(c.value for c in CATEGORY_ORDER if c.value in present)

    @property
    def risks(self) -> tuple[str, ...]:
        """The risk values its tools have, in display order (so the last is the highest)."""
        present = {risk for _, _, risk, _ in self.packed_tools}
        return tuple(r.value for r in RISK_ORDER if r.value in present)


HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
"""The MCP tool annotations that are booleans, in the order the server index offers them."""

_CATEGORIES: dict[str, Category] = {c.value: c for c in Category}
_RISKS: dict[str, Risk] = {r.value: r for r in Risk}


def _digest(lines: Iterable[str]) -> str:
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=12).hexdigest()


@dataclass
class Catalog:
    servers: list[ServerRef]
    cache_dir: Path
    parsed: int = 0
    """How many files this load had to parse (the rest came from the cache)."""
    _by_slug: dict[str, ServerRef] = field(default_factory=dict)
    _tools_by_name: dict[str, dict[str, ToolRef]] = field(default_factory=dict)
    _distribution: tuple[dict[str, int], dict[str, int]] | None = None

    def __post_init__(self) -> None:
        self._by_slug = {s.slug: s for s in self.servers}

    def server(self, slug: str) -> ServerRef:
        return self._by_slug[slug]

    def tool_ref(self, slug: str, name: str) -> ToolRef:
        tools = self._tools_by_name.get(slug)
        if tools is None:
            tools = self._tools_by_name[slug] = {t.name: t for t in self._by_slug[slug].tools}
        return tools[name]

    def tools(self) -> Iterator[ToolRef]:
        for server in self.servers:
            yield from server.tools

    @property
    def tool_count(self) -> int:
        return sum(s.tool_count for s in self.servers)

    def distribution(self) -> tuple[dict[str, int], dict[str, int]]:
        """Tool counts by category value and by risk value, in display order."""
        if self._distribution is None:
            cats = dict.fromkeys((c.value for c in CATEGORY_ORDER), 0)
            risks = dict.fromkeys((r.value for r in RISK_ORDER), 0)
            for server in self.servers:
                for _, category, risk, _ in server.packed_tools:
                    cats[category] += 1
                    risks[risk] += 1
            self._distribution = (cats, risks)
        return dict(self._distribution[0]), dict(self._distribution[1])

    def load_server(self, slug: str) -> Server:
        """The full model of one server, from the parse cache."""
        return load_cached_server(self.cache_dir, slug, self._by_slug[slug].file_hash)


def server_ref(server: Server, file_hash: str) -> ServerRef:
    tools = sorted(server.tools, key=lambda t: t.name)
    packed = tuple((t.name, t.category.value, assess(t).level.value, t.one_line) for t in tools)
    return ServerRef(
        slug=server.slug,
        name=server.name,
        summary=first_sentence(server.description or ""),
        file_hash=file_hash,
        obtained_at=server.provenance.obtained_at.date().isoformat(),
        packed_tools=packed,
        catalogue_json=json.dumps(catalogue_entry(server), ensure_ascii=False, separators=(",", ":")),
        structure=_digest(f"{name}\0{cat}\0{risk}" for name, cat, risk, _ in packed),
        display=_digest(
            [server.name, *(f"{name}\0{cat}\0{risk}\0{line}" for name, cat, risk, line in packed)]
        ),
        status=server.status,
        hints=tuple(h for h in HINTS if any(t.annotations.get(h) is True for t in server.tools)),
    )


def _server_cache_path(cache_dir: Path, slug: str) -> Path:
    return cache_dir / "servers" / f"{slug}.pickle"


def load_cached_server(cache_dir: Path, slug: str, file_hash: str) -> Server:
    with _server_cache_path(cache_dir, slug).open("rb") as handle:
        stored_hash, server = pickle.load(handle)
    if stored_hash != file_hash:
        raise RuntimeError(f"parse cache for {slug} is stale; rebuild with a clean cache")
    assert isinstance(server, Server)
    return server


class _Parsed(NamedTuple):
    """One registry file's parse result; a NamedTuple because it pickles much faster than a dataclass."""

    file_name: str
    stat_key: tuple[int, int]
    ref: ServerRef | None
    errors: list[LocatedError]


def _parse_file(path: Path, cache_dir: Path) -> _Parsed:
    stat = path.stat()
    raw = path.read_bytes()
    file_hash = hashlib.blake2b(raw, digest_size=16).hexdigest()
    server, errors = load_server_file(path)
    if server is None:
        return _Parsed(path.name, (stat.st_size, stat.st_mtime_ns), None, errors)
    target = _server_cache_path(cache_dir, server.slug)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        pickle.dump((file_hash, server), handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, target)
    return _Parsed(path.name, (stat.st_size, stat.st_mtime_ns), server_ref(server, file_hash), [])


def _parse_batch(paths: list[Path], cache_dir: Path) -> list[_Parsed]:
    return [_parse_file(p, cache_dir) for p in paths]


INDEX_NAME = "index.marshal"
"""marshal of plain tuples: loading 100,000 tools' entries takes a few tens of milliseconds."""
PARALLEL_PARSE_MIN_FILES = 64


def load_catalog(
    registry: Path,
    cache_dir: Path,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> Catalog:
    """Load and validate every registry file; raise RegistryError listing every problem."""
    if not registry.is_dir():
        raise RegistryError(
            [
                RegistryProblem(
                    registry,
                    LocatedError(
                        "",
                        "registry directory not found",
                        "pass --registry pointing at a folder of <slug>.yaml files",
                    ),
                )
            ]
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = code_fingerprint()
    index = _read_index(cache_dir, fingerprint)
    results: dict[str, _Parsed] = {}
    stale: list[Path] = []
    try:
        cached_servers = set(os.listdir(cache_dir / "servers"))
    except FileNotFoundError:
        cached_servers = set()
    for path, stat_key in _registry_stats(registry):
        cached = index.get(path.name)
        if (
            cached is not None
            and cached.stat_key == stat_key
            and cached.ref is not None
            and f"{cached.ref.slug}.pickle" in cached_servers
        ):
            results[path.name] = cached
        else:
            stale.append(path)
    if progress is not None:
        progress(len(results))
    for parsed in _parse_all(stale, cache_dir, workers, progress):
        results[parsed.file_name] = parsed
    problems = [
        RegistryProblem(registry / name, err) for name in sorted(results) for err in results[name].errors
    ]
    if problems:
        raise RegistryError(problems)
    if stale or len(index) != len(results):
        _write_index(cache_dir, fingerprint, results)
    servers = sorted((p.ref for p in results.values() if p.ref is not None), key=lambda s: s.slug)
    return Catalog(servers, cache_dir, parsed=len(stale))


def _registry_stats(registry: Path) -> list[tuple[Path, tuple[int, int]]]:
    """The registry's files (as registry_files lists them) with their size and mtime, in one scan."""
    found = []
    with os.scandir(registry) as entries:
        for entry in entries:
            if entry.name.endswith(".yaml") and entry.is_file():
                stat = entry.stat()
                found.append((entry.name, (stat.st_size, stat.st_mtime_ns)))
    # Sorting names, not Paths: the same order for files of one folder, and far cheaper.
    found.sort()
    return [(registry / name, stat_key) for name, stat_key in found]


def _parse_all(
    paths: list[Path], cache_dir: Path, workers: int, progress: Callable[[int], None] | None
) -> Iterator[_Parsed]:
    if workers <= 1 or len(paths) < PARALLEL_PARSE_MIN_FILES:
        for path in paths:
            yield _parse_file(path, cache_dir)
            if progress is not None:
                progress(1)
        return
    batch = 16
    chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for parsed_batch in pool.map(_parse_batch, chunks, [cache_dir] * len(chunks)):
            yield from parsed_batch
            if progress is not None:
                progress(len(parsed_batch))


def _read_index(cache_dir: Path, fingerprint: str) -> dict[str, _Parsed]:
    try:
        stored = marshal.loads((cache_dir / INDEX_NAME).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(stored, dict) or stored.get("fingerprint") != fingerprint:
        return {}
    entries = stored.get("entries")
    if not isinstance(entries, list):
        return {}
    return {
        name: _Parsed(name, (size, mtime), ServerRef.unpack(packed), [])
        for name, size, mtime, packed in entries
    }


def _write_index(cache_dir: Path, fingerprint: str, entries: dict[str, _Parsed]) -> None:
    rows = [
        (name, parsed.stat_key[0], parsed.stat_key[1], parsed.ref.pack())
        for name, parsed in sorted(entries.items())
        if parsed.ref is not None
    ]
    tmp = cache_dir / f"{INDEX_NAME}.{os.getpid()}.tmp"
    tmp.write_bytes(marshal.dumps({"fingerprint": fingerprint, "entries": rows}))
    os.replace(tmp, cache_dir / INDEX_NAME)
