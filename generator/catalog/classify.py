"""Deterministic tool category from name, description, input schema and annotations, with its evidence.

No network and no model: a handful of weighted signals, each recorded as Evidence so a page can say
why a tool got its category. The lexicons hold general English verbs and nouns, never tool names.
Annotations come from the (untrusted) server: they can tip a close call but never decide alone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.catalog.models import Category, Evidence

READ, WRITE, EXECUTE, DESTRUCTIVE, FINANCIAL = (
    Category.READ,
    Category.WRITE,
    Category.EXECUTE,
    Category.DESTRUCTIVE,
    Category.FINANCIAL,
)

DANGER_ORDER: dict[Category, int] = {READ: 0, WRITE: 1, EXECUTE: 2, DESTRUCTIVE: 3, FINANCIAL: 4}
"""Ties go to the more dangerous category: missing a dangerous tool is the expensive error."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


W_NAME_VERB = 3.5
W_NAME_LATER_VERB = 1.0
W_DESC_VERB = 2.0
W_DESC_PHRASE = 1.5
W_SCHEMA = 1.0
W_ANNOTATION_READ = 1.0
W_ANNOTATION_DESTRUCTIVE = 0.5
DESC_LEAD_WORDS = 6
DESC_LEAD_CHARS = 100
FIRST_SENTENCE_CHARS = 300
DESC_SCAN_CHARS = 800
"""Phrases are looked for in the first 800 characters: long descriptions put their warnings early."""

_VERBS: dict[Category, str] = {
    READ: """get gets list read search find fetch describe show view lookup retrieve check inspect count
        explain analyze analyse summarize summarise browse scrape crawl extract resolve whoami ping compare
        diff preview estimate calculate compute convert parse suggest recommend think snapshot screenshot
        watch monitor poll wait explore discover detect identify lint echo translate query export
        return returns lists gets shows retrieves fetches searches finds reads navigate goto go see visit
        validate verify audit scan trace research ask answer review measure
        sample load print display peek tail head look understand learn locate fuzzy
        format map hover scroll aggregate rank rerank sort filter compress decompress encode decode
        hash screenshot status info health docs""",
    WRITE: """create add new update edit set put post write insert upsert modify patch rename move copy
        upload download save send comment reply assign tag label star fork enable disable configure
        setup register invite publish open close archive unarchive restore import append attach link
        connect subscribe
        unsubscribe mark fill type click select drag press store remember record submit sync share
        generate draft approve change replace finalize transfer switch tick toggle init initialize make
        duplicate
        clone star unstar follow unfollow pin unpin react resize focus emulate throttle
        lock unlock mute unmute rate vote note annotate reopen transition
        notify email handle dialog accept dismiss choose
        prepare feedback report enqueue queue refresh reload act promote""",
    EXECUTE: """run exec execute eval evaluate invoke call trigger deploy start stop restart launch build
        spawn apply scale replay dispatch rerun retry cancel shell bash rollout rollback
        upgrade downgrade reboot provision migrate compile test redeploy pause resume suspend wake
        install simulate process forward sql""",
    DESTRUCTIVE: """delete remove rm del drop destroy purge truncate wipe erase kill terminate uninstall
        revoke reset unlink clear flush discard prune evict ban overwrite expunge nuke obliterate shred
        empty cleanup clean forget rotate deprovision teardown decommission""",
    FINANCIAL: """refund pay charge purchase buy payout withdraw deposit bill invoice
        tip donate""",
}

_FINANCIAL_NOUNS = _words("""payment payments refund refunds invoice invoices charge charges payout payouts
    subscription subscriptions price prices coupon coupons discount promotion balance transaction
    transactions money funds fund wallet billing dispute disputes paymentintent paymentintents paymentlink
    paymentlinks credit credits order orders purchase purchases tax cart plan plans transfer transfers
    bill bills journal journals ledger expense expenses deposit deposits receipt receipts""")
"""Objects whose creation, change or removal moves money or creates a billing obligation."""

_VERB_CATEGORY: dict[str, Category] = {}
for _category in (READ, WRITE, EXECUTE, DESTRUCTIVE, FINANCIAL):
    for _word in _VERBS[_category].split():
        _VERB_CATEGORY.setdefault(_word, _category)

_TOKEN_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_WORD_RE = re.compile(r"[a-z][a-z'-]*")

_DESC_LEAD_RE = re.compile(
    r"^(?:(?:this|the) tool |tool (?:that |to |for )|a tool (?:that |to |for )|use (?:this )?(?:tool )?to |"
    r"use this when you (?:need|want) to |allows? (?:you |the user |users |agents? )?to |lets (?:you )?|"
    r"used to |you can |helps? (?:you )?(?:to )?|will |can |should |must |please |mcp tool to |"
    r"tool: |function to |endpoint to |api to |\W+)+",
)

_DESTRUCTIVE_PHRASES = re.compile(
    r"\b(?:permanently|irreversibl\w*|cannot be undone|can't be undone|can not be undone|not reversible|"
    r"(?:will|this) (?:delete|remove|destroy|erase|wipe|drop|overwrite)s?|deletes? (?:the|a|an|all|one|"
    r"every|this)|removes? (?:the|a|an|all|this) \w+ (?:from|permanently)|destroys?|wipes?|erases?|"
    r"drops? (?:the |a )?(?:table|database|collection|index|schema)|crud|"
    r"create, read, update,? (?:and |or )?delete)\b"
)

_DESTRUCTIVE_GATE = (
    "permanent",
    "irreversib",
    "undone",
    "reversible",
    "delet",
    "remov",
    "destroy",
    "wipe",
    "erase",
    "drop",
    "overwrit",
    "crud",
)

_FINANCIAL_PHRASES = re.compile(
    r"\b(?:refunds?|charges? (?:the |a )?(?:customer|card|payment)|payouts?|send(?:s|ing)? money|transfers? "
    r"(?:funds|money)|payment link|payment intent|checkout session|subscription|invoice|billing|"
    r"purchase|buy)\b"
)

_MONEY_ACTION_PHRASES = re.compile(
    r"\b(?:refunds?|charges? (?:the |a )?(?:customer|card|payment)|payouts?|send(?:s|ing)? money|"
    r"transfers? (?:funds|money)|move(?:s)? money|payment link|payment intent|checkout session)\b"
)
"""Money actions strong enough to decide on their own when the description's first sentence names them."""
_MONEY_ACTION_GATE = ("refund", "charge", "payout", "money", "payment", "checkout")

_READONLY_PHRASES = re.compile(
    r"\b(?:read[- ]only|readonly|does not (?:modify|change|write)|"
    r"without (?:modifying|changing|making changes)|no side effects|safe to call)\b"
)

_READONLY_GATE = ("read-only", "read only", "readonly", "does not", "without", "side effect", "safe to call")

_EXECUTE_PHRASES = re.compile(
    r"\b(?:(?:execute|run)s? (?:a |an |the |arbitrary |any |raw )?(?:sql|shell|command|script|code|"
    r"javascript|python|query|queries|statement|terminal|workflow|pipeline|job|task|process|graphql|"
    r"mutations?)|"
    r"arbitrary (?:code|commands?|sql)|in a (?:sandbox|terminal|shell))"
)

_EXECUTE_GATE = ("execut", "run", "arbitrary", "sandbox", "terminal", "shell")

_ENUMERATION_RE = re.compile(
    r"[a-z]+(?:(?:,| ,)\s*[a-z]+)*,?\s+(?:or|and|and/or)\s+[a-z]+|[a-z]+(?:/[a-z]+)+"
)

_DATA_LOSS_PHRASES = re.compile(
    r"\b(?:overwrit\w* (?:an? |the |any )?existing|replac\w* (?:the |an? )?existing|permanently|"
    r"irreversibl\w*|cannot be undone|can't be undone|can not be undone|not reversible|without warning)\b"
)
"""Words that turn an ordinary write into one that loses what was there."""
_DATA_LOSS_GATE = ("overwrit", "replac", "permanent", "irreversib", "undone", "reversible", "without warning")

_QUERY_NOUNS = _words("query queries search")
_LIFECYCLE_VERBS = _words("cancel stop kill abort terminate pause resume retry rerun")
_WRITE_CAPABLE_QUERY = re.compile(
    r"\b(?:sql|insert|update|upsert|delete|drop|alter|mutations?|ddl|dml|writes?|modif(?:y|ies))\b"
)
_WRITE_CAPABLE_GATE = (
    "sql",
    "insert",
    "update",
    "upsert",
    "delet",
    "drop",
    "alter",
    "mutation",
    "ddl",
    "dml",
    "write",
    "modif",
)
"""A query tool that names none of these can only read, whatever verb runs it."""

_SCHEMA_EXECUTE = _words("""command cmd commands script code shell sql query statement expression function
    javascript python program query_sql raw_sql bash args_command""")
_SCHEMA_FINANCIAL = _words("""amount unit_amount unitamount currency price cost payment_method
    paymentmethod amount_cents amountcents""")
_SCHEMA_DESTRUCTIVE = _words("force confirm confirmation overwrite recursive cascade")

_SQL_HINT = re.compile(r"\bsql\b|\bselect\b.*\bfrom\b|\binsert\b|\bddl\b|\bdml\b", re.IGNORECASE)


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
    return [t.lower() for t in _TOKEN_RE.findall(name)]


def _inflections(verb: str) -> list[str]:
    forms = [verb, verb + "s", verb + "es", verb + "ed", verb + "d", verb + "ing"]
    if verb.endswith("e"):
        forms.append(verb[:-1] + "ing")
    if verb.endswith("y"):
        forms += [verb[:-1] + "ies", verb[:-1] + "ied"]
    if len(verb) <= 4 and verb[-1] not in "aeiouwxy" and verb[-2] in "aeiou":
        forms += [verb + verb[-1] + "ed", verb + verb[-1] + "ing"]
    return forms


_INFLECTED: dict[str, Category] = {}
for _verb, _verb_cat in _VERB_CATEGORY.items():
    for _form in _inflections(_verb):
        _INFLECTED.setdefault(_form, _verb_cat)
_INFLECTED.update(_VERB_CATEGORY)


def verb_category(word: str) -> Category | None:
    """The category of a verb, also for its inflected forms (deletes, deleted, deleting, dropped)."""
    return _INFLECTED.get(word)


@functools.lru_cache(maxsize=65536)
def _name_signals(name: str) -> tuple[tuple[str, ...], tuple[Evidence, ...]]:
    """The name's tokens and verb evidence; cached because tool names repeat across servers."""
    tokens = tuple(name_tokens(name))
    out: list[Evidence] = []
    seen: set[str] = set()
    for token in tokens:
        category = verb_category(token)
        if category is None or token in seen:
            continue
        seen.add(token)
        if not out:
            out.append(_evidence("name", category, W_NAME_VERB, f"the name starts its action with '{token}'"))
        else:
            out.append(_evidence("name", category, W_NAME_LATER_VERB, f"the name also contains '{token}'"))
    return tokens, tuple(out)


def _description_signals(text: str, out: list[Evidence]) -> None:
    """Signals from the lowercased description: its leading verb and phrases anywhere in it."""
    lead = _DESC_LEAD_RE.sub("", text[:200], count=1)
    head = lead[:DESC_LEAD_CHARS]
    for word in _WORD_RE.findall(head)[:DESC_LEAD_WORDS]:
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
    match = _search(_DESTRUCTIVE_PHRASES, _DESTRUCTIVE_GATE, text)
    if match:
        out.append(
            _evidence("description", DESTRUCTIVE, W_DESC_PHRASE, f"the description says '{match.group(0)}'")
        )
    match = _search(_READONLY_PHRASES, _READONLY_GATE, text)
    if match:
        out.append(_evidence("description", READ, W_DESC_PHRASE, f"the description says '{match.group(0)}'"))
    match = _search(_EXECUTE_PHRASES, _EXECUTE_GATE, text)
    if match:
        out.append(
            _evidence("description", EXECUTE, W_DESC_PHRASE, f"the description says '{match.group(0)}'")
        )


def _listed_verbs(lead: str, first: str) -> list[tuple[str, Category]]:
    """The verbs of an enumeration that starts at `first`: "List, create, close, or select a tab"."""
    start = lead.find(first)
    match = _ENUMERATION_RE.match(lead, start) if start >= 0 else None
    if match is None:
        return []
    found = []
    for word in _WORD_RE.findall(match.group(0)):
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
        kind = _schema_key_kind(key)
        if kind is EXECUTE:
            if key.lower() in {"query", "statement"}:
                spec = properties.get(key)
                spec_text = str(spec.get("description", "")) if isinstance(spec, Mapping) else ""
                if not _SQL_HINT.search(spec_text + " " + description[:300]):
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


@functools.lru_cache(maxsize=8192)
def _schema_key_kind(key: str) -> Category | None:
    """What a property name alone suggests; property names repeat across tools, hence the cache."""
    flat = key.lower().replace("-", "_")
    squashed = flat.replace("_", "")
    if flat in _SCHEMA_EXECUTE or squashed in _SCHEMA_EXECUTE:
        return EXECUTE
    if flat in _SCHEMA_FINANCIAL or squashed in _SCHEMA_FINANCIAL:
        return FINANCIAL
    if flat in _SCHEMA_DESTRUCTIVE:
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
        return Classification(WRITE, tuple(evidence))

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
        and _QUERY_NOUNS.intersection(tokens)
        and not _LIFECYCLE_VERBS.intersection(tokens)
        and not _search(_WRITE_CAPABLE_QUERY, _WRITE_CAPABLE_GATE, text)
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
        loss = _search(_DATA_LOSS_PHRASES, _DATA_LOSS_GATE, text)
        if loss:
            evidence.append(
                _evidence("data-loss", DESTRUCTIVE, 0.0, f"a write whose description says '{loss.group(0)}'")
            )
            action = DESTRUCTIVE
    if action in (WRITE, EXECUTE, DESTRUCTIVE):
        money = _money_reason(tokens, text, scores[FINANCIAL])
        if money:
            evidence.append(_evidence("money", FINANCIAL, 0.0, f"it {action.value}s {money}"))
            action = FINANCIAL
    evidence.sort(key=_strongest_first)
    return Classification(action, tuple(evidence))


def _strongest_first(ev: Evidence) -> tuple[float, int]:
    return (-ev.weight, DANGER_ORDER[ev.category])


def _money_reason(tokens: tuple[str, ...], text: str, financial_score: float) -> str:
    """Why a state-changing tool moves money, or '' if nothing says so."""
    nouns = [t for t in tokens if t in _FINANCIAL_NOUNS]
    if nouns:
        return f"a money object ('{nouns[0]}' in the name)"
    if financial_score >= 2.0:
        return "money: its schema or description names amounts and currencies"
    first_sentence = text[: text.find(". ") + 1 or FIRST_SENTENCE_CHARS][:FIRST_SENTENCE_CHARS]
    match = _search(_MONEY_ACTION_PHRASES, _MONEY_ACTION_GATE, first_sentence)
    if match:
        return f"money ('{match.group(0)}' in the description's first sentence)"
    match = _FINANCIAL_PHRASES.search(text[:FIRST_SENTENCE_CHARS]) if financial_score > 0 else None
    if match:
        return f"money ('{match.group(0)}' in the description)"
    return ""


def clear_caches() -> None:
    """Forget cached name, schema-key and evidence results (for benchmarks that measure a cold start)."""
    _name_signals.cache_clear()
    _schema_key_kind.cache_clear()
    _evidence.cache_clear()
