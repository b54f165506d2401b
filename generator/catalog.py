"""The registry as the site needs it: a compact catalogue of every tool, loaded through a parse cache.

Parsing YAML dominates a cold build (about 0.2 ms per tool), so each validated server is cached,
keyed by its file's content hash, next to the output. A rebuild parses only files whose size or
mtime changed, and holds only compact `ToolRef`s for the whole registry in memory; full `Server`
models are loaded one server at a time by the page renderers.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from generator.recommend import recommend
from generator.registry import (
    CATEGORY_ORDER,
    RISK_ORDER,
    Category,
    RegistryError,
    RegistryProblem,
    Risk,
    Server,
    first_sentence,
    load_server_file,
    registry_files,
)
from intercept.errors import LocatedError

CACHE_FORMAT = 2


class ToolRef(NamedTuple):
    """One tool, as other pages mention it."""

    slug: str
    server_name: str
    name: str
    category: Category
    risk: Risk
    one_line: str


@dataclass(frozen=True, slots=True)
class ServerRef:
    slug: str
    name: str
    summary: str
    file_hash: str
    obtained_at: str
    tools: tuple[ToolRef, ...]
    catalogue_json: str
    """This server's entry in registry.json, serialised once when the file is parsed."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Enum members unpickle through Enum.__call__, which dominated loading a 100k-tool index.
        packed = tuple((t.name, t.category.value, t.risk.value, t.one_line) for t in self.tools)
        return (
            _unpack_server_ref,
            (
                self.slug,
                self.name,
                self.summary,
                self.file_hash,
                self.obtained_at,
                packed,
                self.catalogue_json,
            ),
        )

    @property
    def category_counts(self) -> dict[Category, int]:
        counts = dict.fromkeys(CATEGORY_ORDER, 0)
        for tool in self.tools:
            counts[tool.category] += 1
        return counts

    @property
    def risk_counts(self) -> dict[Risk, int]:
        counts = dict.fromkeys(RISK_ORDER, 0)
        for tool in self.tools:
            counts[tool.risk] += 1
        return counts


_CATEGORIES: dict[str, Category] = {c.value: c for c in Category}
_RISKS: dict[str, Risk] = {r.value: r for r in Risk}


def _unpack_server_ref(
    slug: str,
    name: str,
    summary: str,
    file_hash: str,
    obtained_at: str,
    packed: tuple[tuple[str, str, str, str], ...],
    catalogue_json: str,
) -> ServerRef:
    tools = tuple(
        ToolRef(slug, name, tool, _CATEGORIES[cat], _RISKS[risk], line) for tool, cat, risk, line in packed
    )
    return ServerRef(slug, name, summary, file_hash, obtained_at, tools, catalogue_json)


@dataclass
class Catalog:
    servers: list[ServerRef]
    cache_dir: Path
    parsed: int = 0
    """How many files this load had to parse (the rest came from the cache)."""
    _by_slug: dict[str, ServerRef] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_slug = {s.slug: s for s in self.servers}

    def server(self, slug: str) -> ServerRef:
        return self._by_slug[slug]

    def tools(self) -> Iterator[ToolRef]:
        for server in self.servers:
            yield from server.tools

    @property
    def tool_count(self) -> int:
        return sum(len(s.tools) for s in self.servers)

    def load_server(self, slug: str) -> Server:
        """The full model of one server, from the parse cache."""
        return load_cached_server(self.cache_dir, slug, self._by_slug[slug].file_hash)


def code_fingerprint() -> str:
    """Changes whenever the code that turns registry files into cached data changes."""
    digest = hashlib.blake2b(str(CACHE_FORMAT).encode(), digest_size=16)
    root = Path(__file__).resolve().parent
    for name in ("registry.py", "classify.py", "recommend.py", "policyfile.py", "catalog.py"):
        if (root / name).exists():
            digest.update((root / name).read_bytes())
    digest.update((root.parent / "intercept" / "policy.py").read_bytes())
    return digest.hexdigest()


def catalogue_entry(server: Server) -> dict[str, Any]:
    from generator import pages

    tools = []
    for tool in sorted(server.tools, key=lambda t: t.name):
        rec = recommend(tool)
        tools.append(
            {
                "name": tool.name,
                "url": pages.tool_url(server.slug, tool.name),
                "summary": tool.one_line,
                "category": tool.category.value,
                "risk": tool.effective_risk.value,
                "pattern": rec.pattern,
                "required_params": tool.required_params,
                "rules": [
                    r.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
                    for r in rec.rules
                ],
            }
        )
    return {
        "slug": server.slug,
        "name": server.name,
        "url": pages.server_url(server.slug),
        "policy_url": pages.policy_url(server.slug),
        "repository": server.repository,
        "homepage": server.homepage,
        "run": {
            "package_manager": server.run.package_manager,
            "package": server.run.package,
            "version": server.run.version,
            "transport": server.run.transport,
            "command": server.run.command(),
        },
        "tool_count": len(server.tools),
        "tools": tools,
    }


def server_ref(server: Server, file_hash: str) -> ServerRef:
    tools = tuple(
        ToolRef(server.slug, server.name, t.name, t.category, t.effective_risk, t.one_line)
        for t in sorted(server.tools, key=lambda t: t.name)
    )
    return ServerRef(
        slug=server.slug,
        name=server.name,
        summary=first_sentence(server.description or ""),
        file_hash=file_hash,
        obtained_at=server.provenance.obtained_at.date().isoformat(),
        tools=tools,
        catalogue_json=json.dumps(catalogue_entry(server), ensure_ascii=False, separators=(",", ":")),
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


INDEX_NAME = "index.pickle"
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
    files = registry_files(registry)
    results: dict[str, _Parsed] = {}
    stale: list[Path] = []
    for path in files:
        cached = index.get(path.name)
        stat = path.stat()
        if (
            cached is not None
            and cached.stat_key == (stat.st_size, stat.st_mtime_ns)
            and cached.ref is not None
            and _server_cache_path(cache_dir, cached.ref.slug).exists()
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
        with (cache_dir / INDEX_NAME).open("rb") as handle:
            stored = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return {}
    if not isinstance(stored, dict) or stored.get("fingerprint") != fingerprint:
        return {}
    entries = stored.get("entries")
    return entries if isinstance(entries, dict) else {}


def _write_index(cache_dir: Path, fingerprint: str, entries: dict[str, _Parsed]) -> None:
    tmp = cache_dir / f"{INDEX_NAME}.{os.getpid()}.tmp"
    with tmp.open("wb") as handle:
        pickle.dump(
            {"fingerprint": fingerprint, "entries": entries}, handle, protocol=pickle.HIGHEST_PROTOCOL
        )
    os.replace(tmp, cache_dir / INDEX_NAME)
