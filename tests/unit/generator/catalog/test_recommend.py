"""The category-to-rules table, as docs/RECOMMENDATIONS.md states it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from generator.catalog.models import Category, Risk, Tool
from generator.catalog.policyfile import tool_snippet
from generator.catalog.recommend import EXECUTE_LIMIT, WRITE_LIMIT, recommend
from intercept.policy import SlidingRateLimit, load_policy_text

DOCS = Path(__file__).resolve().parents[4] / "docs" / "RECOMMENDATIONS.md"


def tool(category: Category, name: str = "t", **extra: object) -> Tool:
    return Tool.model_validate({"name": name, "description": "d", "category": category.value, **extra})


def test_read_is_allowed_without_limits() -> None:
    rec = recommend(tool(Category.READ))
    assert [r.model_dump(exclude_defaults=True) for r in rec.rules] == [{"action": "allow"}]
    assert rec.pattern == "allow" and rec.risk is Risk.LOW and not rec.denied and rec.rate_limit is None


def test_write_is_allowed_with_a_30_per_minute_sliding_limit() -> None:
    rec = recommend(tool(Category.WRITE))
    assert len(rec.rules) == 1 and rec.rules[0].action == "allow"
    assert rec.rate_limit == SlidingRateLimit(max=30, window=60) == WRITE_LIMIT
    assert rec.risk is Risk.MEDIUM and not rec.requires_args and not rec.denied


def test_execute_is_exactly_the_cancel_run_snippet_from_the_issue() -> None:
    snippet = tool_snippet(tool(Category.EXECUTE, "cancel_run"))
    assert snippet == (
        "tools:\n"
        "  cancel_run:\n"
        "    rules:\n"
        "      - action: allow\n"
        "        rate_limit:\n"
        "          max: 10\n"
        "          window: 60\n"
        "        validate:\n"
        "          required_args: true\n"
    )
    rec = recommend(tool(Category.EXECUTE, "cancel_run"))
    assert rec.rate_limit == EXECUTE_LIMIT and rec.requires_args and rec.risk is Risk.HIGH


@pytest.mark.parametrize(
    ("category", "what"),
    [(Category.DESTRUCTIVE, "can destroy data or resources"), (Category.FINANCIAL, "moves money")],
)
def test_destructive_and_financial_are_denied_with_a_reason(category: Category, what: str) -> None:
    rec = recommend(tool(category, "drop_db"))
    assert rec.denied and rec.pattern == "deny" and rec.risk is Risk.CRITICAL
    assert len(rec.rules) == 1 and rec.rules[0].action == "deny"
    assert rec.deny_reason is not None
    assert rec.deny_reason.startswith(f"drop_db {what} ({category.value}, critical")


def test_deny_reason_reflects_a_risk_override() -> None:
    rec = recommend(tool(Category.DESTRUCTIVE, "purge_cache", risk="medium", risk_reason="cache only"))
    assert rec.risk is Risk.MEDIUM and rec.deny_reason is not None and "medium risk" in rec.deny_reason


@pytest.mark.parametrize("category", list(Category))
def test_every_snippet_loads_as_a_policy_with_the_same_rules(category: Category) -> None:
    t = tool(category, "some.tool-name_1")
    policy = load_policy_text(tool_snippet(t))
    assert tuple(policy.tools[t.name].rules) == recommend(t).rules


def test_recommendations_doc_states_the_limits_in_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for limit in (WRITE_LIMIT, EXECUTE_LIMIT):
        assert f"{limit.max} calls per {limit.window} seconds" in text
    for category in Category:
        assert f"| {category.value} |" in text


def _with_env(category: Category, env: Mapping[str, object]) -> Tool:
    schema = {"type": "object", "properties": {"environment": env}}
    return tool(category, "run_job", input_schema=schema)


def _approval_values(rec_tool: Tool) -> list[list[object]]:
    return [[c.value for c in r.conditions] for r in recommend(rec_tool).approval_rules]


def test_a_production_enum_value_needs_approval_spelled_as_the_schema_spells_it() -> None:
    env = {"type": "string", "enum": ["dev", "Production", "prod-eu", "staging"]}
    rec = recommend(_with_env(Category.EXECUTE, env))
    [rule] = rec.approval_rules
    assert rule.name == "production needs approval" and rule.action == "require_approval"
    assert [(c.path, c.op, c.value) for c in rule.conditions] == [
        ("args.environment", "in", ["Production", "prod-eu"])
    ]
    assert rec.rules[0].rate_limit == EXECUTE_LIMIT
    assert rec.pattern.endswith("production calls need approval")
    assert load_policy_text(tool_snippet(_with_env(Category.EXECUTE, env))).tools["run_job"].rules == list(
        rec.rules
    )


def test_a_free_text_environment_is_matched_against_prod_and_production() -> None:
    env = {"type": "string", "description": "Target environment, e.g. production"}
    assert _approval_values(_with_env(Category.WRITE, env)) == [[["prod", "production"]]]


def test_no_approval_rule_when_no_value_can_be_told_apart_or_the_tool_is_denied_or_reads() -> None:
    unnamed = {"type": "string", "enum": ["dev", "live"], "description": "live is production"}
    assert _approval_values(_with_env(Category.EXECUTE, unnamed)) == []
    flag = {"type": "boolean", "description": "Run against production"}
    assert _approval_values(_with_env(Category.EXECUTE, flag)) == []
    env = {"type": "string", "enum": ["dev", "prod"]}
    for category in (Category.READ, Category.DESTRUCTIVE, Category.FINANCIAL):
        assert _approval_values(_with_env(category, env)) == []
