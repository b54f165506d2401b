"""Deterministic tool category from name, description, input schema and annotations, with its evidence.

No network and no model: a handful of weighted signals, each recorded as Evidence so a page can say
why a tool got its category. The vocabulary (`generator.catalog.lexicon`) holds general English verbs
and nouns, never tool names. Annotations come from the (untrusted) server: they weigh in a close call
and bound the answer (destructiveHint never ends in read; readOnlyHint ends in read unless the
description names a change), and a category that contradicts them is recorded as a HintConflict.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from generator.catalog.lexicon import (
    ASSET_NOUNS,
    ASSET_TRADE_VERBS,
    DATA_LOSS_GATE,
    DATA_LOSS_PHRASES,
    DESC_LEAD_RE,
    DESTRUCTIVE,
    DESTRUCTIVE_GATE,
    DESTRUCTIVE_PHRASES,
    ENUMERATION_RE,
    EXECUTE,
    EXECUTE_GATE,
    EXECUTE_PHRASES,
    FINANCIAL,
    FINANCIAL_NOUNS,
    FINANCIAL_PHRASES,
    LIFECYCLE_VERBS,
    MONEY_ACTION_GATE,
    MONEY_ACTION_PHRASES,
    NOUN_FIRST,
    OPERATION_KEYS,
    PHRASAL_ENDS,
    QUERY_NOUNS,
    READ,
    READONLY_GATE,
    READONLY_PHRASES,
    REMOTE_NOUNS,
    RUNS_CODE,
    SCHEMA_DESTRUCTIVE,
    SCHEMA_EXECUTE,
    SCHEMA_FINANCIAL,
    SQL_HINT,
    TOKEN_RE,
    WORD_RE,
    WRITE,
    WRITE_CAPABLE_GATE,
    WRITE_CAPABLE_QUERY,
    verb_category,
)
from generator.catalog.models import Category, Evidence, HintConflict, deciding_evidence

DANGER_ORDER: dict[Category, int] = {READ: 0, WRITE: 1, EXECUTE: 2, DESTRUCTIVE: 3, FINANCIAL: 4}
"""Ties go to the more dangerous category: missing a dangerous tool is the expensive error."""


W_NAME_VERB = 3.5
W_NAME_LATER_VERB = 1.0
W_DESC_VERB = 2.0
W_DESC_PHRASE = 1.5
W_SCHEMA = 1.0
W_OPERATION = 2.0
"""An operation selector's worst choice: as strong as the description's verb, weaker than the name's."""
W_ANNOTATION_READ = 1.0
W_ANNOTATION_DESTRUCTIVE = 0.5
DESC_LEAD_WORDS = 6
DESC_LEAD_CHARS = 100
FIRST_SENTENCE_CHARS = 300
DESC_SCAN_CHARS = 800
"""Phrases are looked for in the first 800 characters: long descriptions put their warnings early."""


@dataclass(frozen=True, slots=True)
class Classification:
    category: Category
    evidence: tuple[Evidence, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "category": self.category.value,
            "evidence": [
                {"signal": e.signal, "category": e.category.value, "weight": e.weight, "detail": e.detail}
                for e in self.evidence
            ],
        }


@functools.lru_cache(maxsize=8192)
def _evidence(signal: str, category: Category, weight: float, detail: str) -> Evidence:
    # Loading a 250k-tool registry classifies every tool: most details repeat ("the name starts
    # its action with 'list'"), Evidence is frozen, so one shared object per detail is safe, and
    # model_construct skips validation of values built right here.
    return Evidence.model_construct(signal=signal, category=category, weight=weight, detail=detail)


def _search(pattern: re.Pattern[str], gate: tuple[str, ...], text: str) -> re.Match[str] | None:
    """Run a phrase regex only when one of its cheap substrings is present: most texts have none."""
    for word in gate:
        if word in text:
            return pattern.search(text)
    return None


def name_tokens(name: str) -> list[str]:
    """`createPaymentLink`, `create_payment_link` and `create-payment.link` all give create/payment/link."""
    return [t.lower() for t in TOKEN_RE.findall(name)]


def _name_verbs(tokens: tuple[str, ...]) -> list[tuple[str, Category]]:
    """The name's verbs in order, each once, with trading verbs resolved by the name's nouns."""
    trades_assets = bool(ASSET_NOUNS.intersection(tokens))
    publishes = tokens == ("push",) or bool(REMOTE_NOUNS.intersection(tokens))
    verbs: list[tuple[str, Category]] = []
    for token in tokens:
        if any(token == seen for seen, _ in verbs):
            continue
        if trades_assets and token in ASSET_TRADE_VERBS:
            category: Category | None = FINANCIAL
        elif publishes and token == "push":
            category = EXECUTE
        else:
            category = verb_category(token)
        if category is not None:
            verbs.append((token, category))
    return verbs


@functools.lru_cache(maxsize=65536)
def _name_signals(name: str) -> tuple[tuple[str, ...], tuple[Evidence, ...]]:
    """The name's tokens and verb evidence; cached because tool names repeat across servers."""
    tokens = tuple(name_tokens(name))
    verbs = _name_verbs(tokens)
    if not verbs and len(tokens) > 1 and tokens[-1] in PHRASAL_ENDS and tokens[-2] not in {"shut", "slow"}:
        category, effect = PHRASAL_ENDS[tokens[-1]]
        return tokens, (
            _evidence("name", category, W_NAME_VERB, f"the name ends in '{tokens[-1]}': it {effect}"),
        )
    if not verbs:
        return tokens, ()
    lead = 0
    if verbs[0][0] in NOUN_FIRST and len(verbs) > 1:
        lead = len(verbs) - 1
    word, category = verbs[lead]
    if lead:
        detail = f"the name's action is '{word}' ('{verbs[0][0]}' is what it acts on)"
    else:
        detail = f"the name starts its action with '{word}'"
    out = [_evidence("name", category, W_NAME_VERB, detail)]
    out += [
        _evidence("name", other, W_NAME_LATER_VERB, f"the name also contains '{token}'")
        for i, (token, other) in enumerate(verbs)
        if i != lead
    ]
    return tokens, tuple(out)


def _description_signals(text: str, out: list[Evidence]) -> None:
    """Signals from the lowercased description: its leading verb and phrases anywhere in it."""
    lead = DESC_LEAD_RE.sub("", text[:200], count=1)
    head = lead[:DESC_LEAD_CHARS]
    for word in WORD_RE.findall(head)[:DESC_LEAD_WORDS]:
        category = verb_category(word)
        if category is None:
            continue
        listed = _listed_verbs(head, word) if ("," in head or " or " in head or "/" in head) else []
        if len(listed) > 1:
            worst_word, category = max(listed, key=lambda pair: DANGER_ORDER[pair[1]])
            names = ", ".join(w for w, _ in listed)
            out.append(
                _evidence(
                    "description",
                    category,
                    W_DESC_VERB,
                    f"the description lists several actions ({names}); the most dangerous is '{worst_word}'",
                )
            )
        else:
            out.append(
                _evidence("description", category, W_DESC_VERB, f"the description's first action is '{word}'")
            )
        break
    match = _search(DESTRUCTIVE_PHRASES, DESTRUCTIVE_GATE, text)
    if match:
        out.append(
            _evidence("description", DESTRUCTIVE, W_DESC_PHRASE, f"the description says '{match.group(0)}'")
        )
    match = _search(READONLY_PHRASES, READONLY_GATE, text)
    if match:
        out.append(_evidence("description", READ, W_DESC_PHRASE, f"the description says '{match.group(0)}'"))
    match = _search(EXECUTE_PHRASES, EXECUTE_GATE, text)
    if match:
        out.append(
            _evidence("description", EXECUTE, W_DESC_PHRASE, f"the description says '{match.group(0)}'")
        )


def _listed_verbs(lead: str, first: str) -> list[tuple[str, Category]]:
    """The verbs of an enumeration that starts at `first`: "List, create, close, or select a tab"."""
    start = lead.find(first)
    match = ENUMERATION_RE.match(lead, start) if start >= 0 else None
    if match is None:
        return []
    found = []
    for word in WORD_RE.findall(match.group(0)):
        category = verb_category(word)
        if category is not None:
            found.append((word, category))
    return found


def _schema_signals(schema: Mapping[str, Any] | None, description: str, out: list[Evidence]) -> None:
    if not schema:
        return
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return
    money: list[str] = []
    for key in list(properties)[:64]:
        if not isinstance(key, str):
            continue
        if key.lower() in OPERATION_KEYS:
            _operation_signal(key, properties.get(key), out)
            continue
        kind = _schema_key_kind(key)
        if kind is EXECUTE:
            if key.lower() in {"query", "statement"}:
                spec = properties.get(key)
                spec_text = str(spec.get("description", "")) if isinstance(spec, Mapping) else ""
                if not SQL_HINT.search(spec_text + " " + description[:300]):
                    continue
            out.append(_evidence("schema", EXECUTE, W_SCHEMA, f"it takes a '{key}' to run"))
        elif kind is FINANCIAL:
            money.append(key)
        elif kind is DESTRUCTIVE:
            out.append(_evidence("schema", DESTRUCTIVE, W_SCHEMA / 2, f"it takes a '{key}' flag"))
    if money:
        out.append(
            _evidence(
                "schema",
                FINANCIAL,
                W_SCHEMA * min(len(money), 2),
                f"it takes money fields: {', '.join(money[:3])}",
            )
        )


def _operation_signal(key: str, spec: Any, out: list[Evidence]) -> None:
    """A multi-action tool gets its most dangerous action: the worst verb its operation can be."""
    if not isinstance(spec, Mapping):
        return
    choices = spec.get("enum")
    if isinstance(choices, list):
        words = [w for choice in choices[:32] if isinstance(choice, str) for w in name_tokens(choice)[:1]]
    else:
        words = []
        text = str(spec.get("description", ""))[:300].lower()
        for match in ENUMERATION_RE.finditer(text):
            words = WORD_RE.findall(match.group(0))
            if sum(1 for w in words if verb_category(w) is not None) > 1:
                break
    verbs = [(w, c) for w in words if (c := verb_category(w)) is not None]
    if len(verbs) > 1:
        word, category = max(verbs, key=lambda pair: DANGER_ORDER[pair[1]])
        names = ", ".join(dict.fromkeys(w for w, _ in verbs))
        out.append(
            _evidence(
                "schema",
                category,
                W_OPERATION,
                f"its '{key}' chooses among actions ({names}); the most dangerous is '{word}'",
            )
        )


@functools.lru_cache(maxsize=8192)
def _schema_key_kind(key: str) -> Category | None:
    """What a property name alone suggests; property names repeat across tools, hence the cache."""
    flat = key.lower().replace("-", "_")
    squashed = flat.replace("_", "")
    if flat in SCHEMA_EXECUTE or squashed in SCHEMA_EXECUTE:
        return EXECUTE
    if flat in SCHEMA_FINANCIAL or squashed in SCHEMA_FINANCIAL:
        return FINANCIAL
    if flat in SCHEMA_DESTRUCTIVE:
        return DESTRUCTIVE
    return None


def _annotation_signals(annotations: Mapping[str, Any] | None, out: list[Evidence]) -> None:
    if not annotations:
        return
    if annotations.get("readOnlyHint") is True:
        out.append(
            _evidence(
                "annotation", READ, W_ANNOTATION_READ, "the server marks it readOnlyHint (an untrusted hint)"
            )
        )
    elif annotations.get("destructiveHint") is True:
        out.append(
            _evidence(
                "annotation",
                DESTRUCTIVE,
                W_ANNOTATION_DESTRUCTIVE,
                "the server marks it destructiveHint (an untrusted hint)",
            )
        )


def classify(
    name: str,
    description: str = "",
    input_schema: Mapping[str, Any] | None = None,
    annotations: Mapping[str, Any] | None = None,
) -> Classification:
    """The category of one tool and every signal that fired, strongest first."""
    tokens, name_evidence = _name_signals(name)
    evidence = list(name_evidence)
    text = description[:DESC_SCAN_CHARS].lower()
    _description_signals(text, evidence)
    _schema_signals(input_schema, text, evidence)
    own_signals = len(evidence)
    _annotation_signals(annotations, evidence)
    if own_signals == 0:
        evidence.append(
            _evidence(
                "default",
                WRITE,
                0.0,
                "no signal in the name, description or schema; assuming it changes state",
            )
        )
        action = _server_hints(WRITE, annotations, evidence)
        return Classification(action, tuple(evidence))

    scores = dict.fromkeys(DANGER_ORDER, 0.0)
    for ev in evidence:
        scores[ev.category] += ev.weight
    action = READ
    best = -1.0
    for category in DANGER_ORDER:  # ordered least to most dangerous, so >= hands ties to danger
        if scores[category] >= best:
            action, best = category, scores[category]

    if (
        action is EXECUTE
        and QUERY_NOUNS.intersection(tokens)
        and not LIFECYCLE_VERBS.intersection(tokens)
        and not _search(WRITE_CAPABLE_QUERY, WRITE_CAPABLE_GATE, text)
    ):
        evidence.append(
            _evidence(
                "read-query",
                READ,
                0.0,
                "it runs a query, and its description names no SQL or way to change data",
            )
        )
        action = READ
    if action is WRITE:
        action = _worse_write(text, evidence)
    action = _server_hints(action, annotations, evidence)
    if action in (WRITE, EXECUTE, DESTRUCTIVE):
        money = _money_reason(tokens, text, scores[FINANCIAL])
        if money:
            evidence.append(_evidence("money", FINANCIAL, 0.0, f"it {action.value}s {money}"))
            action = FINANCIAL
    evidence.sort(key=_strongest_first)
    return Classification(action, tuple(evidence))


def _worse_write(text: str, evidence: list[Evidence]) -> Category:
    """A write that loses what was there is destructive; one that runs code is execute."""
    loss = _search(DATA_LOSS_PHRASES, DATA_LOSS_GATE, text)
    if loss:
        evidence.append(
            _evidence("data-loss", DESTRUCTIVE, 0.0, f"a write whose description says '{loss.group(0)}'")
        )
        return DESTRUCTIVE
    runs = _search(EXECUTE_PHRASES, EXECUTE_GATE, text)
    if runs and RUNS_CODE.search(runs.group(0)):
        evidence.append(_evidence("runs-code", EXECUTE, 0.0, f"a write that can '{runs.group(0)}'"))
        return EXECUTE
    return WRITE


def _server_hints(
    action: Category, annotations: Mapping[str, Any] | None, evidence: list[Evidence]
) -> Category:
    """The server's own hints as evidence: destructiveHint never ends in read; readOnlyHint ends in read
    unless the description names a change (or the name's action is more than a write)."""
    if not annotations:
        return action
    if annotations.get("destructiveHint") is True:
        if action is READ:
            evidence.append(
                _evidence(
                    "annotation", WRITE, 0.0, "the server marks it destructiveHint, so it is not rated read"
                )
            )
            return WRITE
        return action
    if annotations.get("readOnlyHint") is True and action is not READ and not _names_change(action, evidence):
        evidence.append(
            _evidence(
                "annotation",
                READ,
                0.0,
                "the server marks it readOnlyHint and its description names no change",
            )
        )
        return READ
    return action


def _names_change(action: Category, evidence: list[Evidence]) -> bool:
    """Whether the description names a change, or the name's action is one beyond a plain write."""
    for ev in evidence:
        if ev.category is READ or ev.signal == "annotation":
            continue
        if ev.signal in ("description", "data-loss", "runs-code"):
            return True
        if ev.signal == "name" and ev.weight == W_NAME_VERB and action is not WRITE:
            return True
    return False


NO_DELETION_NAMED = "nothing in its name, description or schema names a deletion or an overwrite"


def hint_conflict(
    category: Category,
    annotations: Mapping[str, Any] | None,
    evidence: tuple[Evidence, ...] | list[Evidence],
    reviewed_reason: str | None = None,
) -> HintConflict | None:
    """Where `category` contradicts the server's readOnlyHint or destructiveHint, and why it stands.

    `reviewed_reason` is a person's reason for a curated category; without one the reason is the
    classifier's deciding evidence."""
    if not annotations:
        return None
    read_only, destructive = annotations.get("readOnlyHint"), annotations.get("destructiveHint")
    hint: tuple[Literal["readOnlyHint", "destructiveHint"], bool] | None = None
    if read_only is True and category is not READ:
        hint = ("readOnlyHint", True)
    elif destructive is True and category in (READ, WRITE):
        hint = ("destructiveHint", True)
    elif read_only is False and category is READ:
        hint = ("readOnlyHint", False)
    elif destructive is False and read_only is not True and category is DESTRUCTIVE:
        hint = ("destructiveHint", False)
    if hint is None:
        return None
    if reviewed_reason:
        reason = reviewed_reason
    elif hint == ("destructiveHint", True):
        reason = NO_DELETION_NAMED
    else:
        reason = deciding_evidence(category, evidence)
    return HintConflict.model_construct(
        hint=hint[0], value=hint[1], category=category, reviewed=bool(reviewed_reason), reason=reason
    )


def _strongest_first(ev: Evidence) -> tuple[float, int]:
    return (-ev.weight, DANGER_ORDER[ev.category])


def _money_reason(tokens: tuple[str, ...], text: str, financial_score: float) -> str:
    """Why a state-changing tool moves money, or '' if nothing says so."""
    nouns = [t for t in tokens if t in FINANCIAL_NOUNS]
    if nouns:
        return f"a money object ('{nouns[0]}' in the name)"
    if financial_score >= 2.0:
        return "money: its schema or description names amounts and currencies"
    first_sentence = text[: text.find(". ") + 1 or FIRST_SENTENCE_CHARS][:FIRST_SENTENCE_CHARS]
    match = _search(MONEY_ACTION_PHRASES, MONEY_ACTION_GATE, first_sentence)
    if match:
        return f"money ('{match.group(0)}' in the description's first sentence)"
    match = FINANCIAL_PHRASES.search(text[:FIRST_SENTENCE_CHARS]) if financial_score > 0 else None
    if match:
        return f"money ('{match.group(0)}' in the description)"
    return ""


def clear_caches() -> None:
    """Forget cached name, schema-key and evidence results (for benchmarks that measure a cold start)."""
    _name_signals.cache_clear()
    _schema_key_kind.cache_clear()
    _evidence.cache_clear()
