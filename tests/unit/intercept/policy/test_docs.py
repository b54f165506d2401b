"""docs/POLICY.md documents every field and operator of the policy language (checked against the code)."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from intercept.policy import CALENDAR_SECONDS, KNOWN_KEYS, OPERATORS, Operator, Rule

DOCS = (Path(__file__).resolve().parents[4] / "docs" / "POLICY.md").read_text(encoding="utf-8")
FIELDS = sorted({(model, key) for model, keys in KNOWN_KEYS.items() for key in keys})


@pytest.mark.parametrize(("model", "key"), FIELDS, ids=[f"{m}.{k}" for m, k in FIELDS])
def test_every_field_has_a_table_row(model: str, key: str) -> None:
    assert f"| `{key}` |" in DOCS, f"{model}.{key} is missing from docs/POLICY.md"


@pytest.mark.parametrize("op", OPERATORS)
def test_every_operator_has_a_table_row(op: str) -> None:
    assert f"| `{op}` |" in DOCS, f"operator {op} is missing from docs/POLICY.md"


def test_operator_list_matches_the_schema_type() -> None:
    assert set(OPERATORS) == set(typing.get_args(Operator))


def test_known_keys_match_the_models() -> None:
    from intercept import policy

    for model, keys in KNOWN_KEYS.items():
        fields = getattr(policy, model).model_fields
        aliases = {name: (info.alias or name) for name, info in fields.items()}
        assert set(keys) == set(aliases.values()), model


def test_every_action_and_window_is_documented() -> None:
    for action in Rule.model_fields["action"].annotation.__args__:  # type: ignore[union-attr]
        assert f"`{action}`" in DOCS
    for unit in CALENDAR_SECONDS:
        assert unit in DOCS


def test_wildcard_global_scope_and_hide_all_are_documented() -> None:
    assert '`"*"`' in DOCS and "state._global." in DOCS and "hides every tool" in DOCS
