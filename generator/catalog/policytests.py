"""Starter test cases for a server's recommended policy (`intercept scaffold SERVER --tests FILE`).

Derived from `recommend()`, like the policy itself, so the scaffolded policy passes them: per
tool, one case that checks what its rules do.

* allowed: one call with the required arguments filled in from the input schema;
* rate-limited: `max` calls at once are allowed, the next is denied by the limit's rule, and one
  a full window later is allowed again;
* required arguments checked: first a call without them, denied by the validating rule;
* denied: one call, denied by the deny rule;
* production calls need approval: per approval rule, one call whose argument names production,
  held for approval by that rule; every other call of the case sets a value that does not.

Tools whose rules validate arguments get their input schema under `schemas:`, as the proxy would
learn it from `tools/list`. The format is `intercept.policytest`'s (docs/POLICY.md).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from generator.catalog.models import CATEGORY_ORDER, Server, Tool
from generator.catalog.policyfile import comment_text
from generator.catalog.recommend import Recommendation, recommend
from intercept.policy import Rule, yaml_scalar

_EXAMPLE_DEPTH = 6


def example_value(schema: Any, depth: int = 0) -> Any:
    """A value the schema plausibly accepts: its const, first enum value, default or example, or one
    of its type; an object gets its required properties."""
    if not isinstance(schema, dict) or depth > _EXAMPLE_DEPTH:
        return "example"
    if "const" in schema:
        return schema["const"]
    for key in ("enum", "examples"):
        if isinstance(schema.get(key), list) and schema[key]:
            return schema[key][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_value(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind in {"integer", "number"}:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        low = low if isinstance(low, int | float) and not isinstance(low, bool) else 0
        return max(1, int(low) + 1)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        count = schema.get("minItems", 0)
        count = count if isinstance(count, int) and 0 < count <= 3 else 0
        return [example_value(schema.get("items"), depth + 1) for _ in range(count)]
    if kind == "object" or "properties" in schema:
        return example_arguments(schema, depth + 1)
    return "example"


def example_arguments(schema: Any, depth: int = 0) -> dict[str, Any]:
    """Every required property of an object schema, each with `example_value` of its own schema."""
    if not isinstance(schema, dict):
        return {}
    required = schema.get("required")
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    names = [name for name in required if isinstance(name, str)] if isinstance(required, list) else []
    return {name: example_value(properties.get(name), depth) for name in names}


def flow(value: Any) -> str:
    """A JSON value as one line of YAML flow style that reads back as the same value and types."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_scalar(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    return yaml_scalar(value)


def _rule_label(tool: Tool, rec: Recommendation, applies: Callable[[Rule], bool]) -> str:
    """The engine's name for the first of the tool's recommended rules that `applies`."""
    index, rule = next((i, r) for i, r in enumerate(rec.rules) if applies(r))
    return rule.name if rule.name is not None else f"tools.{tool.name}.rules[{index}]"


def _call(tool: Tool, expect: str, **fields: Any) -> list[str]:
    lines = [f"      - tool: {yaml_scalar(tool.name)}"]
    arguments = fields.pop("arguments", None)
    if arguments:
        lines.append(f"        arguments: {flow(arguments)}")
    lines.extend(f"        {key}: {yaml_scalar(value)}" for key, value in fields.items() if value is not None)
    lines.append(f"        expect: {expect}")
    return lines


def _production_values(rule: Rule) -> tuple[str, list[Any]]:
    """The argument a recommended approval rule tests, and the values that make it apply."""
    condition = rule.conditions[0]
    assert condition.op == "in" and isinstance(condition.value, list)
    return condition.path.removeprefix("args."), condition.value


def _off_production(tool: Tool, rec: Recommendation, arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` with every production value swapped for another value the schema allows (or dropped)."""
    out = dict(arguments)
    for rule in rec.approval_rules:
        name, values = _production_values(rule)
        if out.get(name) not in values:
            continue
        prop = tool.input_schema.get("properties", {}).get(name, {})
        others = [v for v in prop.get("enum", []) if v not in values]
        if others:
            out[name] = others[0]
        else:
            del out[name]
    return out


def _approval_calls(tool: Tool, rec: Recommendation, arguments: dict[str, Any]) -> list[str]:
    calls: list[str] = []
    for rule in rec.approval_rules:
        name, values = _production_values(rule)
        label = _rule_label(tool, rec, functools.partial(operator.is_, rule))
        calls += _call(tool, "require_approval", arguments={**arguments, name: values[0]}, rule=label)
    return calls


def tool_case(tool: Tool) -> list[str]:
    """The YAML lines of one case (`- name: ...`) checking what the tool's recommended rules do."""
    rec = recommend(tool)
    arguments = _off_production(tool, rec, example_arguments(tool.input_schema))
    calls: list[str] = []
    if rec.denied:
        calls += _call(
            tool, "deny", arguments=arguments, rule=_rule_label(tool, rec, lambda r: r.action == "deny")
        )
    else:
        if rec.requires_args and tool.required_params:
            calls += _call(tool, "deny", rule=_rule_label(tool, rec, lambda r: r.validate_ is not None))
        calls += _approval_calls(tool, rec, arguments)
        limit = rec.rate_limit
        if limit is None:
            calls += _call(tool, "allow", arguments=arguments)
        else:
            rule = _rule_label(tool, rec, lambda r: r.rate_limit is not None)
            calls += _call(tool, "allow", arguments=arguments, repeat=limit.max if limit.max > 1 else None)
            calls += _call(tool, "deny", arguments=arguments, rule=rule)
            calls += _call(tool, "allow", arguments=arguments, after=limit.window)
    return [f"  - name: {yaml_scalar(f'{tool.name}: {rec.pattern}')}", "    calls:", *calls]


def render_policy_tests(server: Server, policy_file: str, tests_file: str) -> tuple[str, int]:
    """The cases file for a server's recommended policy, and how many cases it holds."""
    tools = sorted(server.tools, key=lambda t: (CATEGORY_ORDER.index(t.category), t.name))
    validated = [t for t in tools if recommend(t).requires_args]
    lines = [
        f"# Tests for the recommended Intercept policy of the {comment_text(server.name)} MCP server",
        f"# Run them:  intercept test -c {comment_text(policy_file)} {comment_text(tests_file)}",
        "# Each case starts from empty counters at 2026-01-01T00:00:00Z. Add a case whenever you",
        "# change a rule, so the change is checked before it is enforced (docs/POLICY.md).",
    ]
    if validated:
        lines.append("schemas:  # input schemas, as the proxy learns them from tools/list")
        lines.extend(f"  {yaml_scalar(t.name)}: {flow(t.input_schema)}" for t in validated)
    lines.append("cases:")
    for tool in tools:
        lines.extend(tool_case(tool))
    return "\n".join(lines) + "\n", len(tools)
