"""'Similar tools on other servers': a deterministic ranking by shared name words, weighted by rarity.

Tools are grouped by (category, set of name words); every tool in a group has the same candidates,
so the ranking is computed once per group, not once per tool. Two groups' score is the sum, over
the words they share, of log(groups in the category / groups with that word). Ties break by tool
name, then server slug. Very common words (`get`, `list`) only add weight to candidates a rarer
word already found, unless too few were found, which keeps the work per group small.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice

from generator.catalog.models import Category
from generator.site.parsecache import ToolRef

SIMILAR_LIMIT = 10
COMMON_WORD_POSTINGS = 200

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")

GroupKey = tuple[Category, tuple[str, ...]]


@lru_cache(maxsize=1 << 18)
def name_words(name: str) -> tuple[str, ...]:
    """`cancelRun`, `cancel_run` and `cancel-run` all give ('cancel', 'run'); sorted, unique."""
    spaced = _CAMEL.sub(r"\1 \2", name)
    return tuple(sorted({w.lower() for w in _SPLIT.split(spaced) if w}))


ToolId = tuple[str, str]
"""(server slug, tool name)."""


@dataclass(slots=True)
class SimilarIndex:
    ranked: dict[GroupKey, tuple[ToolRef, ...]]
    """Per group: enough ranked tools that, whichever server asks, ten from other servers remain."""
    unresolved: dict[GroupKey, tuple[ToolId, ...]] = field(default_factory=dict)
    """Rankings kept from a previous build as tool ids, turned into ToolRefs when first asked for."""
    resolve: Callable[[str, str], ToolRef] | None = None

    def for_tool(self, slug: str, name: str, category: Category) -> list[ToolRef]:
        key = (category, name_words(name))
        ranked = self.ranked.get(key)
        if ranked is None:
            ids = self.unresolved.get(key, ())
            assert self.resolve is not None or not ids
            ranked = tuple(self.resolve(s, n) for s, n in ids) if self.resolve else ()
            self.ranked[key] = ranked
        return list(islice((t for t in ranked if t.slug != slug), SIMILAR_LIMIT))

    @staticmethod
    def from_ids(
        ids: dict[GroupKey, tuple[ToolId, ...]], resolve: Callable[[str, str], ToolRef]
    ) -> SimilarIndex:
        return SimilarIndex({}, ids, resolve)

    def ids(self) -> dict[GroupKey, tuple[ToolId, ...]]:
        """Every group's ranking as tool ids (only for an index computed in this build)."""
        return {key: tuple((t.slug, t.name) for t in tools) for key, tools in self.ranked.items()}


def build_similar_index(tools: Iterable[ToolRef]) -> SimilarIndex:
    groups: dict[GroupKey, list[ToolRef]] = defaultdict(list)
    for tool in tools:
        groups[(tool.category, name_words(tool.name))].append(tool)
    for members in groups.values():
        members.sort(key=lambda t: (t.name, t.slug))
    by_category: dict[Category, list[GroupKey]] = defaultdict(list)
    for key in sorted(groups, key=lambda k: (k[0].value, k[1])):
        by_category[key[0]].append(key)
    ranked: dict[GroupKey, tuple[ToolRef, ...]] = {}
    for keys in by_category.values():
        postings: dict[str, list[GroupKey]] = defaultdict(list)
        for key in keys:
            for word in key[1]:
                postings[word].append(key)
        total = len(keys)
        idf = {w: math.log((total + 1) / len(p)) + 1e-9 for w, p in postings.items()}
        for key in keys:
            ranked[key] = _rank(key, groups, postings, idf)
    return SimilarIndex(ranked)


def _rank(
    key: GroupKey,
    groups: dict[GroupKey, list[ToolRef]],
    postings: dict[str, list[GroupKey]],
    idf: dict[str, float],
) -> tuple[ToolRef, ...]:
    words = sorted(key[1], key=lambda w: (len(postings[w]), w))
    scores: dict[GroupKey, float] = {}
    for word in words:
        posting = postings[word]
        weight = idf[word]
        if len(posting) <= COMMON_WORD_POSTINGS or _tool_total(scores, groups) < 2 * SIMILAR_LIMIT:
            for other in (
                posting[: max(COMMON_WORD_POSTINGS, 1)] if len(posting) > COMMON_WORD_POSTINGS else posting
            ):
                scores[other] = scores.get(other, 0.0) + weight
        else:
            for other in scores:
                if word in other[1]:
                    scores[other] += weight
    # Sums run over the query's words in one fixed order, so equal word sets give equal floats.
    order = sorted(scores, key=lambda k: (-scores[k], k[1]))
    out: list[ToolRef] = []
    per_server: dict[str, int] = defaultdict(int)
    for other in order:
        for tool in groups[other]:
            out.append(tool)
            per_server[tool.slug] += 1
        # Enough when even the server with most entries here would still see ten from others.
        if len(out) - max(per_server.values()) >= SIMILAR_LIMIT:
            break
    return tuple(out)


def _tool_total(scores: dict[GroupKey, float], groups: dict[GroupKey, list[ToolRef]]) -> int:
    return sum(len(groups[k]) for k in scores)
