"""Search bundles: how servers are grouped into Pagefind runs, and what each run indexes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from generator.registry import load_registry
from generator.search import SearchIndexError, SearchShard, merge_bundles, plan_shards, run_pagefind
from intercept.cli import main
from tests.unit.generator.site_support import SMALL_REGISTRY, build, parse_page


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
        assert shards == [SearchShard("", ())]
        assert sum(counts) <= limit or len(counts) == 1
        return
    assert [slug for shard in shards for slug in shard.slugs] == [slug for slug, _ in servers]
    assert [shard.bundle for shard in shards] == [""] + [f"shard-{n}" for n in range(2, len(shards) + 1)]
    for shard in shards:
        size = sum(pages[slug] for slug in shard.slugs)
        assert size <= limit or len(shard.slugs) == 1
    for first, second in itertools.pairwise(shards):
        # A bundle is closed only when the next server would not fit.
        assert sum(pages[slug] for slug in first.slugs) + pages[second.slugs[0]] > limit


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
    assert (out / "pagefind" / "shard-2" / "pagefind-entry.json").is_file()
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
