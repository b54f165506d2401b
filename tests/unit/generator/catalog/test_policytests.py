"""Starter test cases for recommended policies: every registry server's policy passes its own."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.catalog.load import load_registry
from generator.catalog.models import Category, Server
from generator.catalog.policyfile import recommended_policy
from generator.catalog.policytests import (
    example_arguments,
    example_value,
    flow,
    render_policy_tests,
    tool_case,
)
from generator.catalog.recommend import recommend
from generator.resources import registry_dir
from intercept.engine import Engine
from intercept.policy import ToolPolicy
from intercept.policytest import CaseFile, parse_cases, run_cases
from intercept.util.safeyaml import load_yaml_text

SERVERS = list(load_registry(registry_dir()))


def scaffolded(server: Server) -> tuple[CaseFile, int]:
    text, count = render_policy_tests(server, f"{server.slug}.yaml", f"{server.slug}.tests.yaml")
    return parse_cases(load_yaml_text(text), f"{server.slug}.tests.yaml"), count


@pytest.mark.parametrize("default", ["allow", "deny"])
@pytest.mark.parametrize("server", SERVERS, ids=[s.slug for s in SERVERS])
def test_every_scaffolded_policy_passes_its_scaffolded_tests(server: Server, default: Any) -> None:
    cases, count = scaffolded(server)
    results = run_cases(Engine(recommended_policy(server, default)), cases)
    assert count == len(results) == len(server.tools)
    failed = [line for r in results if not r.passed for line in r.render()]
    assert failed == []


def test_the_registry_covers_every_kind_of_case() -> None:
    categories = {tool.category for server in SERVERS for tool in server.tools}
    assert categories == set(Category)


@pytest.mark.parametrize("server", SERVERS[:8], ids=[s.slug for s in SERVERS[:8]])
def test_schemas_and_arguments_read_back_exactly(server: Server) -> None:
    cases, _ = scaffolded(server)
    tools = {t.name: t for t in server.tools}
    assert cases.schemas == {name: t.input_schema for name, t in tools.items() if recommend(t).requires_args}
    for case in cases.cases:
        for call in case.calls:
            if call.arguments and call.expect != "require_approval":
                assert call.arguments == example_arguments(tools[call.tool].input_schema)


def test_the_cases_check_what_each_rule_does() -> None:
    server = next(s for s in SERVERS if s.slug == "trigger-dev")
    cases, _ = scaffolded(server)
    by_tool = {case.calls[0].tool: case for case in cases.cases}
    denied = next(t for t in server.tools if t.category is Category.DESTRUCTIVE)
    assert [(c.expect, c.rule) for c in by_tool[denied.name].calls] == [
        ("deny", f"tools.{denied.name}.rules[0]")
    ]
    executed = next(t for t in server.tools if t.category is Category.EXECUTE and t.required_params)
    calls = by_tool[executed.name].calls
    rule = f"tools.{executed.name}.rules[0]"
    assert [(c.expect, c.rule, c.repeat, c.after, bool(c.arguments)) for c in calls] == [
        ("deny", rule, 1, None, False),
        ("require_approval", "production needs approval", 1, None, True),
        ("allow", None, 10, None, True),
        ("deny", rule, 1, None, True),
        ("allow", None, 1, 60, True),
    ]
    # A policy that drops the limit fails the case.
    policy = recommended_policy(server)
    first, *others = policy.tools[executed.name].rules
    unlimited = first.model_copy(update={"rate_limit": None})
    loose = policy.model_copy(
        update={"tools": {**policy.tools, executed.name: ToolPolicy(rules=[unlimited, *others])}}
    )
    [result] = run_cases(Engine(loose), CaseFile(cases=[by_tool[executed.name]], schemas=cases.schemas))
    assert result.failure is not None and "expected deny by rule" in result.render()[1]


def test_production_calls_expect_approval_and_the_others_stay_off_production() -> None:
    server = next(s for s in SERVERS if s.slug == "trigger-dev")
    cases, _ = scaffolded(server)
    case = next(c for c in cases.cases if c.calls[0].tool == "trigger_task")
    held = [c for c in case.calls if c.expect == "require_approval"]
    assert [(c.rule, c.arguments.get("environment")) for c in held] == [("production needs approval", "prod")]
    assert all(c.arguments.get("environment") != "prod" for c in case.calls if c not in held)
    assert any(c.expect == "allow" for c in case.calls)
    # A policy without the approval rule fails the case.
    policy = recommended_policy(server)
    ungated = [r for r in policy.tools["trigger_task"].rules if r.action != "require_approval"]
    loose = policy.model_copy(update={"tools": {**policy.tools, "trigger_task": ToolPolicy(rules=ungated)}})
    [result] = run_cases(Engine(loose), CaseFile(cases=[case], schemas=cases.schemas))
    assert result.failure is not None
    assert "expected require_approval by rule production needs approval" in result.render()[1]


def test_a_production_first_enum_value_is_swapped_for_another() -> None:
    server = next(s for s in SERVERS if s.slug == "trigger-dev")
    tool = server.tool("deploy")
    assert tool is not None
    schema = {**tool.input_schema, "properties": {"environment": {"type": "string", "enum": ["prod", "dev"]}}}
    flipped = tool.model_copy(update={"input_schema": schema})
    text = "\n".join(tool_case(flipped))
    assert "{environment: dev}" in text and "{environment: prod}" in text
    assert text.count("{environment: prod}") == 1


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string"}, "example"),
        ({"type": "string", "enum": ["b", "a"]}, "b"),
        ({"const": 3}, 3),
        ({"type": "integer", "default": 7}, 7),
        ({"type": "integer", "minimum": 10}, 11),
        ({"type": ["null", "boolean"]}, True),
        ({"type": "array", "minItems": 2, "items": {"type": "number"}}, [1, 1]),
        ({"type": "array"}, []),
        ({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}, {"a": 1}),
        ({"anyOf": [{"type": "boolean"}, {"type": "string"}]}, True),
        ("not a schema", "example"),
    ],
)
def test_example_values_follow_the_schema(schema: Any, value: Any) -> None:
    assert example_value(schema) == value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_flow_yaml_reads_back_as_the_same_value(value: Any) -> None:
    assert load_yaml_text(f"v: {flow(value)}\n") == {"v": value}
