"""Located, human-readable validation errors shared by the policy and registry loaders."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True, slots=True)
class LocatedError:
    """One problem in an input file: where it is, what is wrong, and how to fix it."""

    location: str
    message: str
    hint: str = ""

    def render(self, source: str = "") -> str:
        where = f"{source}: " if source else ""
        at = f"{self.location}: " if self.location else ""
        tail = f" (fix: {self.hint})" if self.hint else ""
        return f"{where}{at}{self.message}{tail}"


class InputError(Exception):
    """Raised when an input file is invalid; carries every error found, not just the first."""

    def __init__(self, source: str, errors: Sequence[LocatedError]) -> None:
        self.source = source
        self.errors = list(errors)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(e.render(self.source) for e in self.errors)


def format_location(loc: Iterable[int | str]) -> str:
    """Turn a pydantic location tuple into `tools.create_charge.rules[1].conditions[0]`."""
    out = ""
    parts = list(loc)
    for i, part in enumerate(parts):
        if part == "[key]":
            continue
        if isinstance(part, int) and i + 1 < len(parts) and parts[i + 1] == "[key]":
            # A mapping key that is not a string, e.g. `123:` under tools.
            out += f".{part}" if out else str(part)
        elif isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "<")) or part in {"str", "int", "float", "bool", "list", "dict"}:
            # Union branch tags from pydantic (and our own `<tag>` discriminator tags) say nothing
            # a user can act on.
            continue
        elif out:
            out += f".{part}"
        else:
            out = part
    return out


def closest(word: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


Loc = tuple[int | str, ...]


def from_validation_error(
    exc: ValidationError,
    known_keys: dict[str, Sequence[str]] | None = None,
    model_at: Callable[[Loc], str | None] | None = None,
) -> list[LocatedError]:
    """Convert a pydantic ValidationError into located errors with fix hints.

    `known_keys` maps a model title to its accepted keys, so an unknown key can be
    answered with the nearest real one ("did you mean 'rate_limit'?"). `model_at` names the
    model of the mapping at a location, so the guess comes from that model's keys only.
    """
    errors: list[LocatedError] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        location = format_location(loc)
        kind = err["type"]
        hint = ""
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            parent = format_location(loc[:-1])
            message = f"unknown key '{key}'"
            model = model_at(loc[:-1]) if model_at else None
            if known_keys and model in known_keys:
                candidates = list(known_keys[model])
            else:
                candidates = [k for keys in (known_keys or {}).values() for k in keys]
            guess = closest(key, candidates)
            hint = f"did you mean '{guess}'?" if guess else "remove it; unknown keys are never ignored"
            location = parent if parent else location
            if not parent:
                location = "(top level)"
        elif kind == "missing":
            message = "required field is missing"
            hint = f"add '{loc[-1]}'" if loc else ""
        elif kind in {"literal_error", "enum"}:
            ctx = err.get("ctx", {})
            message = f"invalid value {err.get('input')!r}"
            hint = f"use one of {ctx.get('expected', '')}"
        elif kind in {"value_error", "assertion_error"}:
            raw = str(err["msg"])
            message = raw.removeprefix("Value error, ").removeprefix("Assertion failed, ")
            if " | fix: " in message:
                message, hint = message.split(" | fix: ", 1)
        else:
            message = str(err["msg"])
            if "input" in err and not isinstance(err["input"], dict | list):
                message += f" (got {err['input']!r})"
            hint = _type_hint(kind, err.get("ctx") or {})
        key_ = (location, message)
        if key_ in seen:
            continue
        seen.add(key_)
        errors.append(LocatedError(location, message, hint))
    return errors


_TYPE_HINTS: dict[str, str] = {
    "string_type": "write text; quote it if YAML reads it as a number or boolean",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "float_type": "write a number",
    "float_parsing": "write a number",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "dict_type": "write a mapping (key: value lines)",
    "model_type": "write a mapping (key: value lines)",
    "list_type": "write a list, e.g. [a, b]",
    "datetime_type": "write an ISO 8601 timestamp, e.g. '2026-01-31T12:00:00Z'",
    "datetime_parsing": "write an ISO 8601 timestamp, e.g. '2026-01-31T12:00:00Z'",
    "datetime_from_date_parsing": "write an ISO 8601 timestamp, e.g. '2026-01-31T12:00:00Z'",
}


def _type_hint(kind: str, ctx: dict[str, object]) -> str:
    bounds = {
        "greater_than_equal": ("ge", "use a value of at least {}"),
        "greater_than": ("gt", "use a value above {}"),
        "less_than_equal": ("le", "use a value of at most {}"),
        "less_than": ("lt", "use a value below {}"),
        "string_too_short": ("min_length", "use at least {} characters"),
        "string_too_long": ("max_length", "use at most {} characters"),
        "too_short": ("min_length", "give at least {} items"),
        "too_long": ("max_length", "give at most {} items"),
    }
    if kind in bounds:
        key, template = bounds[kind]
        return template.format(ctx.get(key, "the limit"))
    return _TYPE_HINTS.get(kind, "see the format's documentation in docs/")


def fail(message: str, hint: str) -> ValueError:
    """Build a ValueError whose text `from_validation_error` splits back into message and hint."""
    return ValueError(f"{message} | fix: {hint}")
