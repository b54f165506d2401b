"""The policy-language page's reference tables, generated from the policy model so they cannot drift.

Every key of `intercept.policy.KNOWN_KEYS` and every operator of `OPERATORS` is listed, in the
model's order; a key or operator without an entry here fails the build (KeyError), and the tests
check the built page names each one.
"""

from __future__ import annotations

from dataclasses import dataclass

from intercept.policy import GLOBAL_SCOPE, KNOWN_KEYS, OPERATORS, WILDCARD

SECTIONS: dict[str, str] = {
    "Policy": "Top level",
    "ToolPolicy": "A tool's entry under tools",
    "Rule": "A rule",
    "SlidingRateLimit": "rate_limit as a sliding window",
    "Condition": "A condition",
    "StateSpec": "state: a counter",
    "ValidateSpec": "validate: argument checks",
    "ApprovalSpec": "approval: how long a held call waits",
}

KEY_TEXT: dict[tuple[str, str], tuple[str, str]] = {
    ("Policy", "version"): ('"1"', 'Policy format version; optional, 1 and "1" are accepted.'),
    ("Policy", "description"): ("string", "Free text for humans."),
    ("Policy", "default"): (
        "allow | deny",
        f'What happens to a tool with no entry under tools (the "{WILDCARD}" entry does not count). '
        "Default allow.",
    ),
    ("Policy", "hide"): (
        "list of tool names",
        f'Removed from every tools/list result and refused if called. "{WILDCARD}" hides every tool.',
    ),
    ("Policy", "tools"): (
        "map of tool name to tool policy",
        f'Rules per tool. The key "{WILDCARD}" holds rules that apply to every call.',
    ),
    ("ToolPolicy", "rules"): (
        "list of rules",
        "Checked in order; a call is admitted only if every rule admits it.",
    ),
    ("ToolPolicy", "pin"): (
        '"sha256:<64 hex>"',
        "The tool's definition hash (name, description, input schema, annotations). If the server's "
        "definition changes, the proxy removes the tool from tools/list and denies its calls. "
        "The command intercept pin writes it; intercept pin --check reports drift.",
    ),
    ("Rule", "name"): (
        "string",
        "Names the rule in denials and the audit log (otherwise tools.<tool>.rules[<i>]); rate-limit "
        "counters keep their count across a reload that keeps the name.",
    ),
    ("Rule", "action"): (
        "allow | evaluate | deny | require_approval",
        "allow and evaluate admit the call if the rule's checks pass; deny refuses it, always or, with "
        "conditions, when all of them hold; require_approval holds that one call until a human approves "
        "it, always or, with conditions, when all of them hold. Default evaluate.",
    ),
    ("Rule", "mode"): (
        "enforce | shadow",
        "enforce (the default) applies the rule; shadow only records in the audit log what the rule "
        "would have denied (would_deny) and lets the other rules decide. A shadow rule counts nothing.",
    ),
    ("Rule", "reason"): ("string", "The message the agent sees when this rule denies."),
    ("Rule", "on_deny"): ("string", "Synonym of reason; give one, or both with the same text."),
    ("Rule", "rate_limit"): (
        '{max, window} or "N/minute|hour|day"',
        'A sliding window ({max: 10, window: 60}) or calendar-aligned UTC windows ("120/minute", '
        '"/hour", "/day"). In the "*" rules it is one limit shared by every tool. Not with conditions '
        "in one rule.",
    ),
    ("Rule", "conditions"): (
        "list of conditions",
        "All must hold for the rule to admit the call (on a deny rule: to deny it). An absent argument "
        "makes a condition fail, so the proxy fails closed.",
    ),
    ("Rule", "state"): ("counter definition", "A counter this rule increments when the call is admitted."),
    ("Rule", "validate"): ("argument checks", "Checks on the call's arguments before it is forwarded."),
    ("Rule", "approval"): (
        "{timeout}",
        "With action: require_approval: how long the call waits for a human before it is denied.",
    ),
    ("ApprovalSpec", "timeout"): (
        "integer seconds, 1 to 86,400",
        "Seconds a held call waits for a grant; then it is denied (approval timed out). Default 120.",
    ),
    ("SlidingRateLimit", "max"): ("integer, 1 to 1,000,000,000", "Calls admitted per window."),
    ("SlidingRateLimit", "window"): ("integer seconds, up to 31 days", "Length of the sliding window."),
    ("Condition", "path"): (
        "string",
        f"args.<name>[.<name>…] reads an argument; state.<tool>.<counter> or state.{GLOBAL_SCOPE}.<counter> "
        "reads a counter (its value including this call).",
    ),
    ("Condition", "op"): ("operator", "One of the operators below."),
    ("Condition", "value"): ("any", "The operand; its type is checked when the policy loads."),
    ("StateSpec", "counter"): ("name", "Letters, digits, _ and -; defined once per scope."),
    ("StateSpec", "window"): ("minute | hour | day", "Calendar-aligned UTC window the count resets on."),
    ("StateSpec", "increment"): ("positive number", "Added per admitted call. Default 1."),
    ("StateSpec", "increment_from"): (
        "args.<path>",
        "Add this numeric argument instead (e.g. an amount); a missing or negative one denies the call.",
    ),
    ("ValidateSpec", "required_args"): (
        "bool",
        "The call must carry every argument the input schema requires.",
    ),
    ("ValidateSpec", "schema"): (
        "bool",
        "The arguments must validate against the tool's full input JSON Schema.",
    ),
}

OPERATOR_TEXT: dict[str, tuple[str, str]] = {
    "eq": ("plain value", "the argument equals the value, type included"),
    "neq": ("plain value", "the argument exists and differs from the value"),
    "in": ("non-empty list", "the argument equals one of the values"),
    "not_in": ("non-empty list", "the argument exists and equals none of them"),
    "lt": ("number", "the argument is a number less than the value"),
    "lte": ("number", "the argument is a number less than or equal to the value"),
    "gt": ("number", "the argument is a number greater than the value"),
    "gte": ("number", "the argument is a number greater than or equal to the value"),
    "regex": ("pattern string", "the argument is a string the pattern matches somewhere in"),
    "contains": ("plain value", "the argument is a string containing the value, or a list holding it"),
    "exists": ("true, false or omitted", "the argument is present (true) or absent (false)"),
}


@dataclass(frozen=True, slots=True)
class Section:
    model: str
    title: str
    rows: tuple[tuple[str, str, str], ...]
    """(key, type, meaning)."""


def sections() -> list[Section]:
    return [
        Section(model, SECTIONS[model], tuple((key, *KEY_TEXT[(model, key)]) for key in keys))
        for model, keys in KNOWN_KEYS.items()
    ]


def operators() -> list[tuple[str, str, str]]:
    return [(op, *OPERATOR_TEXT[op]) for op in OPERATORS]
