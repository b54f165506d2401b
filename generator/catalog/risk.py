"""A tool's risk level: its own judgement, made once here, from what one call to the tool can do.

The category says what kind of thing a tool does; the risk says how much harm one call can do.
The judgement starts from the category's baseline and moves up for each factor found in the
tool's name, description, input schema and annotations (see docs/RECOMMENDATIONS.md for the rules).
A `risk:` set by hand in the registry file is authoritative, with its `risk_reason`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.catalog.classify import name_tokens
from generator.catalog.models import RISK_ORDER, Category, Risk, Tool

BASELINE: dict[Category, int] = {
    Category.READ: 0,
    Category.WRITE: 1,
    Category.EXECUTE: 2,
    Category.DESTRUCTIVE: 2,
    Category.FINANCIAL: 3,
}
"""Levels as indexes into RISK_ORDER: what a call of each category can do with no factor present."""

MEANING: dict[Risk, str] = {
    Risk.LOW: "One call changes nothing and reaches nothing it is pointed at; the worst case is "
    "reading data or using up quota.",
    Risk.MEDIUM: "One call does limited, recoverable harm: a single change, or a read that runs a query "
    "or reaches an address or the open world.",
    Risk.HIGH: "One call can do real harm: start or stop work, delete one item, change something with "
    "free-form input or in production, or return secrets.",
    Risk.CRITICAL: "One call can do harm that is hard to undo: move money, delete in bulk or a whole "
    "container, or run code or jobs against production.",
}
"""What each level means, as the risk pages and the FAQ say it."""

HAND_SET = "set by hand"
FREE_FORM = "free-form code"
OPEN_WORLD = "open world"
BULK = "bulk or irreversible scope"
PRODUCTION = "production environment"
SECRETS = "returns secrets"

_CODE_NAMES = frozenset({"sql", "script", "cmd", "shell", "function", "expression", "javascript"})
_CODE_TEXT = re.compile(
    r"\b(?:sql|sql-like|javascript|typescript|python|shell|bash|graphql|promql|cql|trql|kubectl)\b"
    r"|\b(?:source|code) to execute\b|\bfunction containing\b|=>",
    re.IGNORECASE,
)
_COMMAND_TEXT = re.compile(r"\b(?:shell|process|container|kubectl|terminal|argv|array of strings)\b", re.I)
_QUERY_TOOL = re.compile(r"(?:run|exec|execute)[-_]?(?:sql|query)", re.IGNORECASE)
_URL_NAMES = frozenset({"url", "uri", "href", "endpoint", "link"})
_URL_FORMATS = frozenset({"uri", "url", "iri", "uri-reference"})
_BULK_TOKENS = frozenset(
    {"all", "bulk", "batch", "drop", "purge", "truncate", "wipe", "reset", "everything", "mass", "many"}
)
_CONTAINERS = frozenset(
    {
        "database",
        "db",
        "table",
        "bucket",
        "cluster",
        "namespace",
        "project",
        "repository",
        "repo",
        "index",
        "collection",
        "schema",
        "account",
        "organization",
        "workspace",
        "environment",
        "stack",
        "keyspace",
        "volume",
        "directory",
    }
)
_WIDENING_FLAGS = frozenset({"recursive", "force", "cascade", "all"})
_PROD = re.compile(r"\bprod(?:uction)?\b", re.IGNORECASE)
_SECRET_NAME_TOKENS = frozenset(
    {"env", "secret", "secrets", "credential", "credentials", "password", "passwords"}
)
_SECRET_TEXT = re.compile(
    r"\b(?:returns?|prints?|shows?|lists?|reads?|exposes?|reveals?|dumps?|retrieves?|gets?)\b[^.]{0,40}?"
    r"\b(?:environment variables|secrets?|credentials?|passwords?|api keys?|access tokens?|private keys?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """One finding that moved the level, or the hand-set override; shown on the tool page."""

    signal: str
    delta: int
    detail: str


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    level: Risk
    baseline: Risk
    """The category's baseline before any factor."""
    factors: tuple[RiskFactor, ...]
    hand_set: bool


def assess(tool: Tool) -> RiskAssessment:
    """The tool's risk level and the evidence for it."""
    baseline = RISK_ORDER[BASELINE[tool.category]]
    if tool.risk is not None:
        reason = tool.risk_reason or "the registry file sets this level"
        return RiskAssessment(tool.risk, baseline, (RiskFactor(HAND_SET, 0, reason),), True)
    return _computed(
        tool.name,
        tool.description,
        tool.category,
        json.dumps(tool.input_schema, sort_keys=True),
        json.dumps(tool.annotations, sort_keys=True),
    )


def assess_parts(
    name: str, description: str, category: Category, schema: Mapping[str, Any], annotations: Mapping[str, Any]
) -> RiskAssessment:
    """`assess` for a tool given as parts (as `intercept classify` receives it)."""
    return _computed(
        name,
        description,
        category,
        json.dumps(schema, sort_keys=True),
        json.dumps(annotations, sort_keys=True),
    )


@functools.lru_cache(maxsize=16384)
def _computed(
    name: str, description: str, category: Category, schema: str, annotations: str
) -> RiskAssessment:
    props = _properties(json.loads(schema))
    notes: dict[str, Any] = json.loads(annotations)
    factors = [
        f
        for f in (
            _free_form(name, props),
            _open_world(props, notes),
            _bulk(name, category, props) if category is not Category.READ else None,
            _production(props) if category is not Category.READ else None,
            _secrets(name, description) if category is Category.READ else None,
        )
        if f is not None
    ]
    base = BASELINE[category]
    level = max(0, min(len(RISK_ORDER) - 1, base + sum(f.delta for f in factors)))
    return RiskAssessment(RISK_ORDER[level], RISK_ORDER[base], tuple(factors), False)


def _properties(schema: Any) -> dict[str, dict[str, Any]]:
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return {}
    return {str(k): v for k, v in props.items() if isinstance(v, dict)}


def _text(prop: Mapping[str, Any]) -> str:
    text = prop.get("description")
    return text if isinstance(text, str) else ""


def _names(names: list[str]) -> str:
    return f"argument{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _free_form(tool_name: str, props: dict[str, dict[str, Any]]) -> RiskFactor | None:
    """An argument the server runs as code, a query language or a shell command."""
    found = []
    for name, prop in props.items():
        key, text = name.lower(), _text(prop)
        if (
            key in _CODE_NAMES
            or (key == "command" and (not text or _COMMAND_TEXT.search(text)))
            or (key in {"query", "code"} and _CODE_TEXT.search(text))
            or (key == "query" and not text and _QUERY_TOOL.search(tool_name))
        ):
            found.append(name)
    if not found:
        return None
    return RiskFactor(FREE_FORM, 1, f"{_names(found)}: code, a query or a command the server runs")


def _is_url(name: str, prop: Mapping[str, Any]) -> bool:
    lowered = name.lower()
    return (
        lowered in _URL_NAMES
        or lowered.endswith("url")
        or lowered.endswith("_uri")
        or prop.get("format") in _URL_FORMATS
    )


def _open_world(props: dict[str, dict[str, Any]], notes: Mapping[str, Any]) -> RiskFactor | None:
    """The call reaches any address it is given, or the open world: untrusted content, exfiltration."""
    urls = [name for name, prop in props.items() if _is_url(name, prop)]
    if urls:
        return RiskFactor(OPEN_WORLD, 1, f"{_names(urls)}: an address the server will contact")
    if notes.get("openWorldHint") is True:
        return RiskFactor(OPEN_WORLD, 1, "annotated openWorldHint: it reaches systems outside the server")
    return None


def _bulk(name: str, category: Category, props: dict[str, dict[str, Any]]) -> RiskFactor | None:
    """One call affects many items, a whole container, or cannot be undone."""
    tokens = name_tokens(name)
    if hits := sorted(_BULK_TOKENS.intersection(tokens)):
        return RiskFactor(BULK, 1, f"the name says {', '.join(hits)}: one call affects many items")
    if category is Category.DESTRUCTIVE and (hits := sorted(_CONTAINERS.intersection(tokens))):
        return RiskFactor(BULK, 1, f"it deletes a whole {hits[0]} and everything in it")
    flags = [n for n, p in props.items() if n.lower() in _WIDENING_FLAGS and p.get("type") == "boolean"]
    if flags:
        return RiskFactor(BULK, 1, f"{_names(flags)}: widens one call's scope")
    lists = [
        n
        for n, p in props.items()
        if p.get("type") == "array" and re.search(r"(?:ids|Ids|IDs|_keys)$", n) is not None
    ]
    if lists:
        return RiskFactor(BULK, 1, f"{_names(lists)}: a list of items, so one call affects many")
    return None


@dataclass(frozen=True, slots=True)
class ProductionArgument:
    """An argument that can point a call at production, and the values that do."""

    name: str
    values: tuple[str, ...]
    """The schema's enum values that name production, spelled as the schema spells them; for a
    free-text string, PRODUCTION_SPELLINGS; empty when no value can be told apart (an enum none of
    whose values names production, or a non-string argument)."""
    free_text: bool


PRODUCTION_SPELLINGS: tuple[str, ...] = ("prod", "production")
"""What a free-text environment argument is matched against; other spellings are not caught."""


def production_arguments(schema: Any) -> tuple[ProductionArgument, ...]:
    """The arguments of an input schema that select the production environment."""
    found = []
    for name, prop in _properties(schema).items():
        values = prop.get("enum")
        named = (
            tuple(v for v in values if isinstance(v, str) and _PROD.search(v))
            if isinstance(values, list)
            else ()
        )
        if not named and not _PROD.search(_text(prop)):
            continue
        free = not isinstance(values, list) and prop.get("type", "string") == "string"
        found.append(ProductionArgument(name, named or (PRODUCTION_SPELLINGS if free else ()), free))
    return tuple(found)


def _production(props: dict[str, dict[str, Any]]) -> RiskFactor | None:
    """An argument that selects the production environment."""
    found = [arg.name for arg in production_arguments({"properties": props})]
    if not found:
        return None
    return RiskFactor(PRODUCTION, 1, f"{_names(found)}: can point the call at production")


def _secrets(name: str, description: str) -> RiskFactor | None:
    """A read whose result holds secrets: environment variables, credentials, keys."""
    if hits := sorted(_SECRET_NAME_TOKENS.intersection(name_tokens(name))):
        return RiskFactor(SECRETS, 2, f"the name says {hits[0]}: its result can hold credentials")
    if match := _SECRET_TEXT.search(description):
        return RiskFactor(SECRETS, 2, f"the description says it {match.group(0).lower()}")
    return None
