"""Search bundles: how servers are grouped into Pagefind runs, and what each run indexes."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from generator.catalog.load import load_registry
from generator.site.search import (
    SearchIndexError,
    SearchShard,
    canonical_filters,
    merge_bundles,
    plan_shards,
    run_pagefind,
)
from intercept.cli import main
from tests.unit.generator.site.site_support import SMALL_REGISTRY, build, parse_page, tree_hashes


def _indexed_pages(bundle: Path) -> int:
    entry = json.loads((bundle / "pagefind-entry.json").read_text())
    return sum(int(language["page_count"]) for language in entry["languages"].values())


@given(
    counts=st.lists(st.integers(min_value=1, max_value=30), max_size=40),
    limit=st.integers(min_value=1, max_value=50),
)
def test_plan_keeps_order_covers_every_server_and_bounds_each_bundle(counts: list[int], limit: int) -> None:
    servers = [(f"s{number:03d}", count) for number, count in enumerate(counts)]
    pages = dict(servers)
    shards = plan_shards(servers, limit)
    if len(shards) == 1:
        assert shards == [SearchShard("", ())] or shards[0].slugs == tuple(pages)
        assert sum(counts) <= limit or len(counts) == 1
        return
    assert [slug for shard in shards for slug in shard.slugs] == [slug for slug, _ in servers]
    assert [shard.bundle for shard in shards] == [""] + [f"shard-{shard.slugs[0]}" for shard in shards[1:]]
    for shard in shards:
        size = sum(pages[slug] for slug in shard.slugs)
        assert size <= limit or len(shard.slugs) == 1
    for first, second in itertools.pairwise(shards):
        # A bundle is closed early only once it holds half the limit.
        size = sum(pages[slug] for slug in first.slugs)
        assert size >= limit // 2 or size + pages[second.slugs[0]] > limit


@pytest.mark.parametrize("seed", range(20))
def test_an_edit_changes_only_the_bundles_around_it(seed: int) -> None:
    rng = random.Random(seed)
    servers = [(f"srv-{number:05d}", rng.randint(1, 40)) for number in range(3000)]
    before = plan_shards(servers, 2000)
    at = rng.randrange(len(servers))
    edits = {
        "grown": [*servers[:at], (servers[at][0], servers[at][1] + 15), *servers[at + 1 :]],
        "added": [*servers[:at], (servers[at][0] + "-new", 20), *servers[at:]],
        "removed": servers[:at] + servers[at + 1 :],
    }
    for what, edited in edits.items():
        after = plan_shards(edited, 2000)
        changed = set(after) - set(before)
        assert len(before) > 10 and len(changed) <= 3, (what, len(changed))


def test_plan_rejects_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_shards([("a", 1)], 0)


def test_small_site_has_one_bundle_over_every_page(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(SMALL_REGISTRY, out, search=True)
    registry = load_registry(SMALL_REGISTRY)
    assert _indexed_pages(out / "pagefind") == sum(len(s.tools) + 1 for s in registry.servers)
    assert not list((out / "pagefind").glob("shard-*"))
    search = parse_page(out / "search" / "index.html")
    box = next(attrs for tag, attrs in search.attrs if attrs.get("id") == "search")
    assert "data-merge" not in box


def test_sharded_site_indexes_each_server_once_in_its_planned_bundle(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(SMALL_REGISTRY, out, search=True, search_shard_pages=5)
    registry = load_registry(SMALL_REGISTRY)
    shards = plan_shards([(s.slug, len(s.tools) + 1) for s in registry.servers], 5)
    assert len(shards) > 2
    for shard in shards:
        bundle = out / "pagefind" / shard.bundle
        expected = sum(len(s.tools) + 1 for s in registry.servers if s.slug in shard.slugs)
        assert _indexed_pages(bundle) == expected, shard
    assert sorted(p.name for p in (out / "pagefind").glob("shard-*")) == sorted(merge_bundles(shards))
    for rel in ("search/index.html", "index.html"):
        page = parse_page(out / rel)
        box = next(attrs for tag, attrs in page.attrs if attrs.get("id") == "search")
        assert box["data-merge"] == " ".join(merge_bundles(shards))


def test_cli_takes_a_shard_size(tmp_path: Path) -> None:
    out = tmp_path / "site"
    result = CliRunner().invoke(
        main,
        ["build", "--registry", str(SMALL_REGISTRY), "--out", str(out), "--search-shard-pages", "8"],
    )
    assert result.exit_code == 0, result.output
    registry = load_registry(SMALL_REGISTRY)
    shards = plan_shards([(s.slug, len(s.tools) + 1) for s in registry.servers], 8)
    assert len(shards) > 1
    for bundle in merge_bundles(shards):
        assert (out / "pagefind" / bundle / "pagefind-entry.json").is_file()
    bad = CliRunner().invoke(main, ["build", "--out", str(out), "--search-shard-pages", "0"])
    assert bad.exit_code == 2
    assert "--search-shard-pages" in bad.output


def test_a_failed_shard_run_keeps_the_previous_bundle_and_leaves_no_partial_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "servers" / "a").mkdir(parents=True)
    (site / "servers" / "a" / "index.html").write_text("<html><body data-pagefind-body>a</body></html>")
    (site / "pagefind").mkdir()
    (site / "pagefind" / "kept").write_text("old")
    # The second bundle's folder would be a file the first run wrote, so Pagefind fails on it.
    shards = [SearchShard("", ("a",)), SearchShard("pagefind-entry.json", ("a",))]
    with pytest.raises(SearchIndexError, match="pagefind failed"):
        run_pagefind(site, in_place=False, shards=shards)
    assert (site / "pagefind" / "kept").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under folder with its inode and mtime: a rewritten file changes one of them."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_incremental_build_reindexes_only_the_bundles_whose_pages_changed(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(SMALL_REGISTRY, registry)
    out = tmp_path / "site"
    first = build(registry, out, search=True, search_shard_pages=5)
    servers = load_registry(registry).servers
    shards = plan_shards([(s.slug, len(s.tools) + 1) for s in servers], 5)
    assert first.search_bundles == (len(shards), len(shards)) and len(shards) >= 3
    bundle_of = {slug: shard.bundle for shard in shards for slug in shard.slugs}
    before = _files(out / "pagefind")

    text = (registry / "paybox.yaml").read_text()
    edited = text.replace("PayBox payments API as MCP tools.", "PayBox, edited.")
    (registry / "paybox.yaml").write_text(edited)
    second = build(registry, out, search=True, search_shard_pages=5)
    assert second.mode == "incremental" and second.search_bundles == (1, len(shards))
    after = _files(out / "pagefind")
    changed = bundle_of["paybox"]

    def in_bundle(rel: str, bundle: str) -> bool:
        return rel.startswith(f"{bundle}/") if bundle else not rel.startswith("shard-")

    for rel, stamp in before.items():
        if not in_bundle(rel, changed):
            assert after.get(rel) == stamp, rel
    assert any(after.get(rel) != stamp for rel, stamp in before.items() if in_bundle(rel, changed))
    build(registry, tmp_path / "fresh" / "site", search=True, search_shard_pages=5)
    assert tree_hashes(out) == tree_hashes(tmp_path / "fresh" / "site")

    # No change: no Pagefind run at all.
    assert build(registry, out, search=True, search_shard_pages=5).search_bundles == (0, len(shards))


def test_added_and_removed_servers_get_and_lose_their_bundles(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(SMALL_REGISTRY, registry)
    out = tmp_path / "site"
    build(registry, out, search=True, search_shard_pages=5)
    text = (registry / "docs-search.yaml").read_text()
    (registry / "zz-docs.yaml").write_text(text.replace("slug: docs-search", "slug: zz-docs"))
    (registry / "acme-jobs.yaml").unlink()
    result = build(registry, out, search=True, search_shard_pages=5)
    assert result.mode == "incremental"
    servers = load_registry(registry).servers
    shards = plan_shards([(s.slug, len(s.tools) + 1) for s in servers], 5)
    assert sorted(p.name for p in (out / "pagefind").glob("shard-*")) == sorted(merge_bundles(shards))
    build(registry, tmp_path / "fresh" / "site", search=True, search_shard_pages=5)
    assert tree_hashes(out) == tree_hashes(tmp_path / "fresh" / "site")


def test_filters_are_indexed_and_two_runs_over_the_same_pages_give_the_same_bytes(tmp_path: Path) -> None:
    # Pagefind writes filter values in hash-map order; without canonical_filters two runs differ.
    build(SMALL_REGISTRY, tmp_path / "one", search=True)
    build(SMALL_REGISTRY, tmp_path / "two", search=True)
    one, two = tree_hashes(tmp_path / "one" / "pagefind"), tree_hashes(tmp_path / "two" / "pagefind")
    assert one == two
    filters = [
        gzip.decompress((tmp_path / "one" / "pagefind" / rel).read_bytes())
        for rel in one
        if rel.startswith("filter/")
    ]
    registry = load_registry(SMALL_REGISTRY)
    names = sorted({s.name for s in registry.servers}, key=str)
    # Each filter file names its filter, then lists its values in sorted order.
    for name, values in (
        ("category", sorted({t.category.value for s in registry.servers for t in s.tools})),
        ("server", names),
    ):
        payload = next(p for p in filters if name.encode() in p[:40])
        positions = [payload.index(f"{value}".encode()) for value in values]
        assert positions == sorted(positions), name


def test_canonical_filters_rejects_an_index_it_cannot_read(tmp_path: Path) -> None:
    bundle = tmp_path / "pagefind"
    (bundle / "filter").mkdir(parents=True)
    (bundle / "filter" / "en_1234567.pf_filter").write_bytes(gzip.compress(b"not pagefind"))
    with pytest.raises(SearchIndexError, match="cannot read"):
        canonical_filters(bundle)
