"""What an incremental build must redo: the previous build's dependency record and the keys it gives.

A unit (one server's pages) shows its own file's content and, in its similar-tools lists, tools of
other servers; a browse page shows tools of many servers. The record keeps, for every unit and
browse page, a digest of which tools it shows (its identity) and the servers those tools come from.
Both follow from the registry's structure (every server's tool names, categories and risks), so
while the structure is unchanged they are reused as they are, and a page is keyed again only when
its own file changed or a server it shows changed what it displays (`ServerRef.display`). A change
of structure recomputes the record; the keys are defined the same way either way, so they compare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from generator.catalog.models import Category
from generator.site.parsecache import Catalog
from generator.site.similar import (
    SIMILAR_LIMIT,
    GroupKey,
    SimilarIndex,
    ToolId,
    build_similar_index,
    name_words,
)

Deps = tuple[str, tuple[str, ...]]
"""(identity digest, slugs of the servers whose tools are shown), slugs sorted."""

_CATEGORIES: dict[str, Category] = {c.value: c for c in Category}


def digest(parts: Iterable[str]) -> str:
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def structure_key(catalog: Catalog) -> str:
    return digest(f"{server.slug}\0{server.structure}" for server in catalog.servers)


@dataclass
class DependencyRecord:
    """What every unit and browse page showed at one build, and the rankings they showed it from."""

    structure: str
    file_hashes: dict[str, str]
    """Server slug to its registry file's hash at this build."""
    displays: dict[str, str]
    """Server slug to its display digest at this build."""
    units: dict[str, Deps]
    """Server slug to what its pages show of other servers."""
    pages: dict[str, Deps]
    """Browse page file to what it shows."""
    similar: dict[GroupKey, tuple[ToolId, ...]]
    """The similar-tools rankings, as tool ids."""

    def dump(self) -> dict[str, Any]:
        """Plain data for marshal."""
        return {
            "structure": self.structure,
            "file_hashes": self.file_hashes,
            "displays": self.displays,
            "units": self.units,
            "pages": self.pages,
            "similar": {(category.value, words): ids for (category, words), ids in self.similar.items()},
        }

    @staticmethod
    def load(data: Any) -> DependencyRecord | None:
        if not isinstance(data, dict):
            return None
        try:
            similar = {(_CATEGORIES[c], words): ids for (c, words), ids in data["similar"].items()}
            return DependencyRecord(
                data["structure"],
                data["file_hashes"],
                data["displays"],
                data["units"],
                data["pages"],
                similar,
            )
        except (KeyError, TypeError, ValueError):
            return None


def unit_key(settings: str, file_hash: str, deps: Deps, displays: Mapping[str, str]) -> str:
    ident, refs = deps
    return digest([settings, file_hash, ident, *(displays[slug] for slug in refs)])


def page_key(deps: Deps, displays: Mapping[str, str]) -> str:
    ident, slugs = deps
    return digest([ident, *(displays[slug] for slug in slugs)])


def unit_deps(catalog: Catalog, similar: SimilarIndex) -> dict[str, Deps]:
    """For every server, which rankings its similar-tools lists show and the servers they show."""
    groups: dict[GroupKey, tuple[str, frozenset[str]]] = {
        key: (
            digest(f"{t.slug}\0{t.name}" for t in ranked),
            frozenset(t.slug for t in ranked[:SIMILAR_LIMIT]),
        )
        for key, ranked in similar.ranked.items()
    }
    none: tuple[str, frozenset[str]] = ("", frozenset())
    out: dict[str, Deps] = {}
    for server in catalog.servers:
        slug = server.slug
        parts = []
        refs: set[str] = set()
        for tool in server.tools:
            ident, head = groups.get((tool.category, name_words(tool.name)), none)
            parts.append(ident)
            if slug in head:
                # The list skips this server's own tools, so it reaches further down the ranking.
                refs.update(t.slug for t in similar.for_tool(slug, tool.name, tool.category))
            else:
                refs |= head
        out[slug] = (digest(parts), tuple(sorted(refs)))
    return out


def page_deps(header: str, page_total: int, items: Iterable[tuple[str, str]]) -> Deps:
    """A browse page's deps: its listing's header and page count, and the (slug, tool name) it lists."""
    listed = list(items)
    return (
        digest([header, str(page_total), *(f"{slug}\0{name}" for slug, name in listed)]),
        tuple(sorted({slug for slug, _ in listed})),
    )


@dataclass(frozen=True)
class Changes:
    """What changed since the previous build, when its dependency record still holds."""

    files: frozenset[str]
    """Servers whose registry file changed."""
    displays: frozenset[str]
    """Servers whose tools other pages show differently."""


def compare(catalog: Catalog, stored: Any) -> tuple[DependencyRecord, SimilarIndex, Changes | None]:
    """This build's dependency record, its similar-tools index, and what changed since `stored`.

    While the registry's structure is what the previous build saw, its record and rankings hold;
    otherwise both are computed again and the changes are None (every key is computed).
    """
    displays = {server.slug: server.display for server in catalog.servers}
    hashes = {server.slug: server.file_hash for server in catalog.servers}
    structure = structure_key(catalog)
    before = DependencyRecord.load(stored) if stored is not None else None
    if before is not None and before.structure == structure:
        similar = SimilarIndex.from_ids(before.similar, catalog.tool_ref)
        changes = Changes(
            frozenset(slug for slug, digest in hashes.items() if before.file_hashes.get(slug) != digest),
            frozenset(slug for slug, display in displays.items() if before.displays.get(slug) != display),
        )
        kept = DependencyRecord(structure, hashes, displays, before.units, before.pages, before.similar)
        return kept, similar, changes
    similar = build_similar_index(catalog.tools())
    fresh = DependencyRecord(structure, hashes, displays, unit_deps(catalog, similar), {}, similar.ids())
    return fresh, similar, None


def unit_keys(
    catalog: Catalog,
    settings: str,
    record: DependencyRecord,
    previous: Mapping[str, str],
    changes: Changes | None,
) -> dict[str, str]:
    """Every unit's key; a unit whose inputs did not change keeps its `previous` key uncomputed."""
    keys: dict[str, str] = {}
    for server in catalog.servers:
        slug = server.slug
        deps = record.units[slug]
        old = previous.get(slug)
        if (
            changes is not None
            and old is not None
            and slug not in changes.files
            and changes.displays.isdisjoint(deps[1])
        ):
            keys[slug] = old
        else:
            keys[slug] = unit_key(settings, server.file_hash, deps, record.displays)
    return keys
