"""Policy loading: YAML text or file to a valid `Policy`, or an InputError locating every problem.

Structural errors come from the models (`intercept.policy.model`), located and hinted with
"did you mean" from KNOWN_KEYS; checks that span rules (each counter defined once, every counter
read is defined) run here, on the validated policy or, when validation failed, on the raw data
so that they are reported beside the structural ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from intercept.policy.model import (
    GLOBAL_SCOPE,
    KNOWN_KEYS,
    POLICY_MAX_BYTES,
    STATE_PATH_RE,
    WILDCARD,
    Policy,
    counter_scope,
)
from intercept.util.errors import InputError, LocatedError, from_validation_error
from intercept.util.safeyaml import YamlInputError, load_yaml_text, read_yaml_file


@dataclass(frozen=True, slots=True)
class _RuleFacts:
    """What the cross-rule checks need from one rule, whether or not the rule itself is valid."""

    tool_key: str
    index: int
    counter: str | None
    reads: tuple[tuple[int, tuple[str, str]], ...]


def semantic_errors(policy: Policy) -> list[LocatedError]:
    """Checks that span rules: counters defined once, and every counter that is read is defined."""
    facts = [
        _RuleFacts(
            tool_key,
            i,
            rule.state.counter if rule.state is not None else None,
            tuple((j, ref) for j, c in enumerate(rule.conditions) if (ref := c.counter_ref) is not None),
        )
        for tool_key, tool in policy.tools.items()
        for i, rule in enumerate(tool.rules)
    ]
    return _cross_rule_errors(facts)


def _raw_rule_facts(data: Mapping[str, Any]) -> list[_RuleFacts]:
    """Rule facts read from unvalidated data, so cross-rule errors are reported beside structural ones.

    Only well-formed pieces count: a counter whose definition is malformed still counts as defined
    (its own error is reported already), and a malformed condition reads nothing.
    """
    facts: list[_RuleFacts] = []
    tools = data.get("tools")
    if not isinstance(tools, Mapping):
        return facts
    for tool_key, tool in tools.items():
        rules = tool.get("rules") if isinstance(tool, Mapping) else None
        if not isinstance(tool_key, str) or not isinstance(rules, list):
            continue
        for i, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            state = rule.get("state")
            counter = state.get("counter") if isinstance(state, Mapping) else None
            reads: list[tuple[int, tuple[str, str]]] = []
            conditions = rule.get("conditions")
            for j, cond in enumerate(conditions if isinstance(conditions, list) else []):
                path = cond.get("path") if isinstance(cond, Mapping) else None
                match = STATE_PATH_RE.match(path) if isinstance(path, str) else None
                if match:
                    reads.append((j, (match.group(1), match.group(2))))
            facts.append(_RuleFacts(tool_key, i, counter if isinstance(counter, str) else None, tuple(reads)))
    return facts


def _cross_rule_errors(facts: list[_RuleFacts]) -> list[LocatedError]:
    errors: list[LocatedError] = []
    defined: dict[tuple[str, str], str] = {}
    for fact in facts:
        if fact.counter is None:
            continue
        key = (counter_scope(fact.tool_key), fact.counter)
        where = f"tools.{fact.tool_key}.rules[{fact.index}].state.counter"
        if key in defined:
            errors.append(
                LocatedError(
                    where,
                    f"counter '{fact.counter}' is already defined at {defined[key]}",
                    "give each counter one defining rule; read it elsewhere with a state.* condition",
                )
            )
        else:
            defined[key] = where
    for fact in facts:
        tool_key, i = fact.tool_key, fact.index
        for j, ref in fact.reads:
            if ref in defined:
                continue
            scope, counter = ref
            if scope == WILDCARD:
                hint = f'counters defined under "*" are read as state.{GLOBAL_SCOPE}.{counter}'
            else:
                owner = '"*"' if scope == GLOBAL_SCOPE else scope
                hint = f"add a rule under tools.{owner} with state: {{counter: {counter}, window: day}}"
            errors.append(
                LocatedError(
                    f"tools.{tool_key}.rules[{i}].conditions[{j}].path",
                    f"condition reads counter '{scope}.{counter}', which no rule defines",
                    hint,
                )
            )
    return errors


_NESTED_MODELS = {
    "state": "StateSpec",
    "validate": "ValidateSpec",
    "rate_limit": "SlidingRateLimit",
    "approval": "ApprovalSpec",
}


def _model_at(loc: tuple[int | str, ...]) -> str | None:
    """The model of the mapping at a pydantic location, read from the location's shape."""
    parts = [p for p in loc if not (isinstance(p, str) and p.startswith("<"))]
    if not parts:
        return "Policy"
    if parts[0] != "tools":
        return None
    depth = len(parts)
    if depth == 2:
        return "ToolPolicy"
    if depth == 4 and parts[2] == "rules":
        return "Rule"
    if depth == 5 and isinstance(parts[4], str):
        return _NESTED_MODELS.get(parts[4])
    if depth == 6 and parts[4] == "conditions":
        return "Condition"
    return None


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate already-parsed data as a policy; raise InputError listing every problem.

    An empty document (an empty or comment-only file) is an error, not an allow-everything
    policy: a file truncated while it is saved would otherwise drop every limit on hot reload.
    """
    if data is None or (isinstance(data, Mapping) and not data):
        raise InputError(
            source,
            [
                LocatedError(
                    "(top level)",
                    "the policy is empty",
                    "write the policy's rules under `tools:`; to admit every call on purpose, write "
                    "`default: allow`",
                )
            ],
        )
    if not isinstance(data, Mapping):
        raise InputError(
            source, [LocatedError("(top level)", "a policy must be a mapping", "start with `tools:`")]
        )
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        structural = from_validation_error(exc, dict(KNOWN_KEYS), _model_at)
        raise InputError(source, structural + _cross_rule_errors(_raw_rule_facts(data))) from None
    errors = semantic_errors(policy)
    if errors:
        raise InputError(source, errors)
    return policy


def load_policy_text(text: str, source: str = "<policy>") -> Policy:
    try:
        data = load_yaml_text(text)
    except YamlInputError as exc:
        raise InputError(source, [LocatedError("", str(exc))]) from None
    return parse_policy(data, source)


def load_policy(path: Path) -> Policy:
    """Load a policy file. Every failure is an InputError naming the file; nothing else escapes."""
    try:
        data = read_yaml_file(path, POLICY_MAX_BYTES)
    except YamlInputError as exc:
        raise InputError(str(path), [LocatedError("", str(exc))]) from None
    return parse_policy(data, str(path))
