"""intercept.policy.load: both forms load, every validation error is located and hinted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from intercept.policy import (
    KNOWN_KEYS,
    OPERATORS,
    POLICY_MAX_BYTES,
    CalendarRateLimit,
    Policy,
    SlidingRateLimit,
    dump_policy,
    load_policy,
    load_policy_text,
    yaml_quoted,
)
from intercept.util.errors import InputError, LocatedError
from intercept.util.safeyaml import load_yaml_text

POLICY_DIR = Path(__file__).resolve().parents[3] / "data" / "policies"
EXAMPLES = sorted(POLICY_DIR.glob("*.yaml"))


def errors_of(text: str) -> list[LocatedError]:
    with pytest.raises(InputError) as caught:
        load_policy_text(text, "p.yaml")
    return caught.value.errors


def only_error(text: str) -> LocatedError:
    errors = errors_of(text)
    assert len(errors) == 1, [e.render() for e in errors]
    return errors[0]


def rule(body: str, tool: str = "t") -> str:
    """A one-rule policy; body is the rule's YAML, indented as a list item's fields."""
    indented = "\n".join("        " + line for line in body.strip("\n").splitlines())
    return f"tools:\n  {tool}:\n    rules:\n      -\n{indented}\n"


def cond(op: str, value: str | None, path: str = "args.x") -> str:
    value_line = f"\n    value: {value}" if value is not None else ""
    return rule(f"conditions:\n  - path: {path}\n    op: {op}{value_line}")


# --- The two accepted forms -----------------------------------------------------------------


def test_recommended_form_from_the_issue_loads() -> None:
    policy = load_policy_text(
        "tools:\n  cancel_run:\n    rules:\n      - action: allow\n        rate_limit:\n"
        "          max: 10\n          window: 60\n        validate:\n          required_args: true\n"
    )
    only = policy.tools["cancel_run"].rules[0]
    assert only.action == "allow"
    assert only.rate_limit == SlidingRateLimit(max=10, window=60)
    assert only.validate_ is not None and only.validate_.required_args is True
    assert policy.default == "allow" and policy.version is None


def test_go_form_loads_with_its_meaning() -> None:
    policy = load_policy(POLICY_DIR / "stripe-guard.yaml")
    assert policy.version == "1" and policy.default == "deny"
    assert policy.hides("delete_customer") and not policy.hides("create_charge")
    charge = policy.tools["create_charge"].rules
    assert charge[0].name == "max single charge"
    assert charge[0].denial_message == "Single charge cannot exceed $500.00"
    assert charge[1].state is not None and charge[1].state.increment_from == "args.amount"
    assert charge[1].conditions[0].counter_ref == ("create_charge", "daily_spend")
    limit = policy.tools["*"].rules[0].rate_limit
    assert isinstance(limit, CalendarRateLimit) and (limit.max, limit.seconds) == (60, 60)


def test_integer_version_means_the_string_version() -> None:
    assert load_policy_text("version: 1\n").version == "1"


@pytest.mark.parametrize("text", ["", "\n", "# rules come later\n", "{}\n"])
def test_an_empty_policy_is_an_error_not_an_allow_everything_policy(text: str) -> None:
    with pytest.raises(InputError) as caught:
        load_policy_text(text, "policy.yaml")
    rendered = caught.value.render()
    assert "policy.yaml" in rendered and "the policy is empty" in rendered and "default: allow" in rendered


def test_an_explicit_allow_everything_policy_is_valid() -> None:
    assert load_policy_text("default: allow\n") == Policy()


def test_hide_star_hides_every_tool_and_summarises_as_all() -> None:
    policy = load_policy(POLICY_DIR / "hide-all.yaml")
    assert policy.hides("anything")
    assert policy.summary().render() == "0 tools, 0 rules, all hidden, default allow"


def test_summary_counts_tools_rules_hidden_default() -> None:
    policy = load_policy(POLICY_DIR / "stripe-guard.yaml")
    assert policy.summary().render() == '3 tools, plus "*" rules, 6 rules, 2 hidden, default deny'


def test_regex_is_compiled_once_at_load() -> None:
    policy = load_policy(POLICY_DIR / "operators.yaml")
    condition = policy.tools["run_query"].rules[1].conditions[0]
    assert condition.pattern is not None and condition.pattern.search("please DROP table x")


def test_nested_argument_path_splits_into_keys() -> None:
    policy = load_policy(POLICY_DIR / "operators.yaml")
    assert policy.tools["run_query"].rules[0].conditions[1].arg_path == ("options", "dry_run")


# --- Examples cover the language and round-trip ---------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_loads_and_round_trips(path: Path) -> None:
    policy = load_policy(path)
    text = dump_policy(policy)
    assert load_policy_text(text) == policy
    assert dump_policy(load_policy_text(text)) == text


def _keys_used(node: object, model: str, seen: dict[str, set[str]]) -> None:
    """Record which keys of which model appear in a parsed policy document."""
    if not isinstance(node, dict):
        return
    seen.setdefault(model, set()).update(node)
    if model == "Policy":
        for tool in (node.get("tools") or {}).values():
            _keys_used(tool, "ToolPolicy", seen)
    elif model == "ToolPolicy":
        for r in node.get("rules") or []:
            _keys_used(r, "Rule", seen)
    elif model == "Rule":
        if isinstance(node.get("rate_limit"), dict):
            _keys_used(node["rate_limit"], "SlidingRateLimit", seen)
        for c in node.get("conditions") or []:
            _keys_used(c, "Condition", seen)
        _keys_used(node.get("state"), "StateSpec", seen)
        _keys_used(node.get("validate"), "ValidateSpec", seen)
        _keys_used(node.get("approval"), "ApprovalSpec", seen)


def test_examples_use_every_field_and_operator() -> None:
    seen: dict[str, set[str]] = {}
    ops: set[str] = set()
    calendar_units: set[str] = set()
    for path in EXAMPLES:
        doc = load_yaml_text(path.read_text())
        _keys_used(doc, "Policy", seen)
        ops.update(re.findall(r"^\s*op: (\w+)", path.read_text(), re.M))
        calendar_units.update(re.findall(r"rate_limit: \d+/(\w+)", path.read_text()))
    for model, keys in KNOWN_KEYS.items():
        unused = set(keys) - seen.get(model, set())
        assert not unused, f"{model} keys unused by tests/data/policies: {unused}"
    assert set(OPERATORS) <= ops, f"operators unused: {set(OPERATORS) - ops}"
    assert {"minute", "hour"} <= calendar_units


# --- One test per validation error ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location", "key", "guess"),
    [
        (rule("action: allow\nrate_limt: 10/minute"), "tools.t.rules[0]", "rate_limt", "rate_limit"),
        ("defualt: deny\n", "(top level)", "defualt", "default"),
        ("tools:\n  t:\n    rulez: []\n", "tools.t", "rulez", "rules"),
        (
            rule("conditions:\n  - path: args.x\n    opp: eq\n    op: eq\n    value: 1"),
            "tools.t.rules[0].conditions[0]",
            "opp",
            "op",
        ),
        (
            rule("state:\n  counter: c\n  window: day\n  incremnt: 2"),
            "tools.t.rules[0].state",
            "incremnt",
            "increment",
        ),
        (
            rule("validate:\n  required_arg: true"),
            "tools.t.rules[0].validate",
            "required_arg",
            "required_args",
        ),
        (rule("rate_limit:\n  max: 1\n  windw: 60"), "tools.t.rules[0].rate_limit", "windw", "window"),
    ],
    ids=["rule", "top-level", "tool", "condition", "state", "validate", "rate-limit"],
)
def test_unknown_key_is_an_error_with_did_you_mean(text: str, location: str, key: str, guess: str) -> None:
    errors = errors_of(text)
    unknown = [e for e in errors if e.message == f"unknown key '{key}'"]
    assert unknown, [e.render() for e in errors]
    assert unknown[0].location == location
    assert unknown[0].hint == f"did you mean '{guess}'?"


def test_unknown_key_with_no_near_match_says_remove_it() -> None:
    err = only_error("zzzzzz: 1\n")
    assert err.message == "unknown key 'zzzzzz'" and "remove it" in err.hint


def test_typo_never_silently_drops_a_limit() -> None:
    errors = errors_of(rule("action: allow\nrate_limt: 10/minute"))
    assert any("rate_limt" in e.render() for e in errors)


@pytest.mark.parametrize(
    ("op", "value", "message"),
    [
        ("lt", "'a'", "op 'lt' needs a number, got str 'a'"),
        ("lte", "true", "op 'lte' needs a number, got bool True"),
        ("gt", "[1]", "op 'gt' needs a number, got list [1]"),
        ("gte", None, "op 'gte' needs a number, got nothing"),
        ("in", "a", "op 'in' needs a non-empty list, got str 'a'"),
        ("not_in", "[]", "op 'not_in' needs a non-empty list, got list []"),
        ("in", "[[1, 2]]", "op 'in' needs a list of plain values"),
        ("regex", "5", "op 'regex' needs a string pattern, got int 5"),
        ("exists", "'yes'", "op 'exists' takes value true or false (or none)"),
        ("contains", None, "op 'contains' needs a plain value"),
        ("contains", "{a: 1}", "op 'contains' needs a plain value"),
        ("eq", "[1, 2]", "op 'eq' compares plain values only"),
        ("neq", "{a: 1}", "op 'neq' compares plain values only"),
        ("eq", "2024-01-01", "value datetime.date(2024, 1, 1) is a YAML date, not a JSON value"),
        ("lt", ".nan", "value must be a finite number"),
        ("in", "[.inf]", "value must be a finite number"),
    ],
    ids=lambda v: str(v)[:24],
)
def test_operator_value_type_mismatch(op: str, value: str | None, message: str) -> None:
    err = only_error(cond(op, value))
    assert err.location == "tools.t.rules[0].conditions[0]"
    assert err.message == message
    assert err.hint


def test_unknown_operator_lists_the_operators() -> None:
    err = only_error(cond("like", "'a'"))
    assert err.location == "tools.t.rules[0].conditions[0].op"
    assert "'eq'" in err.hint and "'exists'" in err.hint


def test_regex_that_does_not_compile() -> None:
    err = only_error(cond("regex", "'([a-z'"))
    assert err.message.startswith("regex '([a-z' does not compile: unterminated character set")
    assert err.hint == "check the pattern's syntax"


def test_regex_that_is_too_long() -> None:
    err = only_error(cond("regex", "'" + "a" * 2000 + "'"))
    assert err.message == "regex is too long"


@pytest.mark.parametrize("op", ["regex", "contains", "in", "not_in", "exists"])
def test_counter_path_takes_only_numeric_comparisons(op: str) -> None:
    value = {"regex": "'x'", "contains": "1", "in": "[1]", "not_in": "[1]", "exists": None}[op]
    text = cond(op, value, path="state.t.c") + "      - state: {counter: c, window: day}\n"
    err = only_error(text)
    assert err.message == f"a counter is a number; op '{op}' cannot test it"


@pytest.mark.parametrize("path", ["amount", "args", "args.", "args..x", "state.t", "state.a.b.c", "args.a b"])
def test_bad_condition_path(path: str) -> None:
    err = only_error(cond("eq", "1", path=f"'{path}'"))
    assert err.location == "tools.t.rules[0].conditions[0].path"
    assert "must start with 'args.'" in err.message


@pytest.mark.parametrize("value", ["'ten'", "true", "null"])
@pytest.mark.parametrize("op", ["eq", "neq"])
def test_counter_compared_with_a_non_number(op: str, value: str) -> None:
    text = cond(op, value, path="state.t.c") + "      - state: {counter: c, window: day}\n"
    err = only_error(text)
    assert err.message.startswith(f"a counter is a number; op '{op}' needs a number")


def test_counter_read_but_undefined() -> None:
    err = only_error(cond("lt", "5", path="state.t.spend"))
    assert err.location == "tools.t.rules[0].conditions[0].path"
    assert err.message == "condition reads counter 't.spend', which no rule defines"
    assert err.hint == "add a rule under tools.t with state: {counter: spend, window: day}"


def test_global_counter_read_but_undefined_points_at_star() -> None:
    err = only_error(cond("lt", "5", path="state._global.calls"))
    assert 'tools."*"' in err.hint


def test_counter_read_through_star_scope_explains_global() -> None:
    text = 'tools:\n  "*":\n    rules:\n      - state: {counter: calls, window: day}\n' + cond(
        "lt", "5", path="state.*.calls"
    ).removeprefix("tools:\n")
    err = only_error(text)
    assert "state._global.calls" in err.hint


def test_counter_of_another_tool_is_a_different_counter() -> None:
    text = (
        "tools:\n  a:\n    rules:\n      - state: {counter: c, window: day}\n"
        "  b:\n    rules:\n      - conditions: [{path: state.b.c, op: lt, value: 1}]\n"
    )
    assert only_error(text).location == "tools.b.rules[0].conditions[0].path"


def test_duplicate_counters() -> None:
    text = rule("state: {counter: spend, window: day}") + "      - state: {counter: spend, window: hour}\n"
    err = only_error(text)
    assert err.location == "tools.t.rules[1].state.counter"
    assert err.message == "counter 'spend' is already defined at tools.t.rules[0].state.counter"


def test_structural_and_cross_rule_errors_are_reported_together() -> None:
    text = (
        "tools:\n  t:\n    rules:\n      - state: {counter: c, window: day}\n"
        "      - state: {counter: c, window: day}\n"
        "      - conditions: [{path: state.t.missing, op: lt, value: 1}]\n"
        "      - rate_limt: 5/minute\n"
    )
    rendered = [e.render() for e in errors_of(text)]
    assert any("unknown key 'rate_limt'" in r for r in rendered)
    assert any("counter 'c' is already defined" in r for r in rendered)
    assert any("'t.missing', which no rule defines" in r for r in rendered)


def test_malformed_counter_definition_does_not_cause_a_false_undefined_error() -> None:
    text = rule("conditions: [{path: state.t.c, op: lt, value: 1}]") + (
        "      - state: {counter: c, window: fortnight}\n"
    )
    rendered = [e.render() for e in errors_of(text)]
    assert len(rendered) == 1 and "fortnight" in rendered[0]


def test_rate_limit_with_conditions() -> None:
    err = only_error(rule("rate_limit: 5/minute\nconditions: [{path: args.x, op: eq, value: 1}]"))
    assert err.location == "tools.t.rules[0]"
    assert err.message == "rate_limit cannot be combined with conditions in one rule"
    assert err.hint == "split them into two rules"


@pytest.mark.parametrize(
    "extra",
    ["rate_limit: 5/minute", "state: {counter: c, window: day}", "validate: {required_args: true}"],
)
def test_deny_with_limits(extra: str) -> None:
    err = only_error(rule(f"action: deny\n{extra}"))
    assert err.message == "a deny rule cannot carry rate_limit, state or validate"


def test_reason_and_on_deny_that_disagree() -> None:
    err = only_error(rule("action: deny\nreason: a\non_deny: b"))
    assert err.message == "reason and on_deny are synonyms; they disagree"


def test_reason_and_on_deny_that_agree_load() -> None:
    policy = load_policy_text(rule("action: deny\nreason: same\non_deny: same"))
    assert policy.tools["t"].rules[0].denial_message == "same"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("'10/week'", "rate_limit '10/week' is not of the form 'N/minute', 'N/hour' or 'N/day'"),
        ("'ten/minute'", "rate_limit 'ten/minute' is not of the form"),
        ("'10'", "rate_limit '10' is not of the form"),
        ("'-1/minute'", "rate_limit '-1/minute' is not of the form"),
        ("'0/minute'", "rate_limit must admit at least one call"),
        ("{max: 0, window: 60}", "Input should be greater than or equal to 1"),
        ("{max: 5, window: 0}", "Input should be greater than or equal to 1"),
        ("{max: 5, window: 99999999}", "Input should be less than or equal to 2678400"),
        ("{max: 5}", "required field is missing"),
    ],
)
def test_bad_rate_limit(value: str, message: str) -> None:
    errors = errors_of(rule(f"rate_limit: {value}"))
    assert any(
        e.message.startswith(message) and e.location.startswith("tools.t.rules[0].rate_limit") for e in errors
    ), [e.render() for e in errors]


def test_calendar_rate_limit_allows_spaces() -> None:
    limit = load_policy_text(rule("rate_limit: ' 5 / hour '")).tools["t"].rules[0].rate_limit
    assert isinstance(limit, CalendarRateLimit) and str(limit) == "5/hour"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("state: {counter: 'bad name', window: day}", "counter name 'bad name' is invalid"),
        ("state: {counter: c, window: week}", "invalid value 'week'"),
        ("state: {counter: c, window: day, increment: 0}", "Input should be greater than 0"),
        (
            "state: {counter: c, window: day, increment_from: amount}",
            "increment_from 'amount' must be an argument",
        ),
    ],
)
def test_bad_state(body: str, message: str) -> None:
    err = only_error(rule(body))
    assert err.message.startswith(message), err.render()
    assert err.location.startswith("tools.t.rules[0].state")


def test_bad_action() -> None:
    err = only_error(rule("action: block"))
    assert err.location == "tools.t.rules[0].action" and err.message == "invalid value 'block'"
    assert "'allow'" in err.hint and "'deny'" in err.hint


def test_bad_default() -> None:
    err = only_error("default: maybe\n")
    assert err.location == "default" and "'deny'" in err.hint


def test_bad_version() -> None:
    assert only_error('version: "2"\n').location == "version"


@pytest.mark.parametrize("name", ["bad name", "a" * 129, "tool/x", "caf\u00e9", ""])
def test_bad_tool_name(name: str) -> None:
    err = only_error(f"tools:\n  {yaml_quoted(name)}:\n    rules: []\n")
    assert err.location == "tools"
    assert "is invalid" in err.message and "1-128 characters" in err.hint


@pytest.mark.parametrize("name", ["bad name", "x" * 129])
def test_bad_hide_entry(name: str) -> None:
    err = only_error(f"hide: [{yaml_quoted(name)}]\n")
    assert err.location == "hide" and "is not a valid tool name" in err.message


def test_hide_lists_a_tool_twice() -> None:
    assert only_error("hide: [a, a]\n").message == "hide lists a tool twice"


def test_non_string_tool_key() -> None:
    err = only_error("tools:\n  123:\n    rules: []\n")
    assert err.location == "tools.123"
    assert err.message == "Input should be a valid string (got 123)" and "quote it" in err.hint


def test_several_errors_are_all_reported_with_locations() -> None:
    text = (
        "defualt: deny\n"
        "tools:\n  create_charge:\n    rules:\n      - action: allow\n"
        "      - conditions: [{path: args.amount, op: lt, value: a}]\n"
        "      - rate_limit: 3/fortnight\n"
    )
    locations = sorted(e.location for e in errors_of(text))
    assert locations == [
        "(top level)",
        "tools.create_charge.rules[1].conditions[0]",
        "tools.create_charge.rules[2].rate_limit",
    ]


def test_every_error_has_a_fix_hint() -> None:
    text = (
        "defualt: deny\nhide: [a, a]\ntools:\n  t:\n    rules:\n"
        "      - {action: deny, rate_limit: 1/minute}\n"
        "      - conditions: [{path: state.t.x, op: lt, value: 1}]\n"
        "      - conditions: [{path: args.x, op: regex, value: '('}]\n"
    )
    errors = errors_of(text)
    assert len(errors) == 5
    assert all(e.hint for e in errors), [e.render() for e in errors]


# --- Input-level errors ---------------------------------------------------------------------


def test_duplicate_yaml_key_in_policy() -> None:
    err = only_error("tools:\n  t:\n    rules: []\n  t:\n    rules: []\n")
    assert err.message.startswith("line 4: duplicate key 't' (first defined on line 2)")


def test_yaml_alias_in_policy() -> None:
    err = only_error("tools:\n  a: &r\n    rules: []\n  b: *r\n")
    assert "aliases" in err.message


def test_yaml_merge_key_in_policy() -> None:
    err = only_error("tools:\n  a:\n    <<: {rules: []}\n")
    assert "merge keys" in err.message


def test_yaml_alias_bomb_in_policy() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 8)}]" for i in range(8)
    ]
    err = only_error("\n".join(lines) + "\n")
    assert "aliases" in err.message


def test_non_mapping_top_level() -> None:
    err = only_error("- a\n- b\n")
    assert err.location == "(top level)" and err.message == "a policy must be a mapping"


def test_oversized_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"description: x\n" + b"# padding\n" * (POLICY_MAX_BYTES // 10 + 1))
    with pytest.raises(InputError) as caught:
        load_policy(path)
    assert caught.value.source == str(path)
    assert "over the 4,194,304-byte limit" in caught.value.errors[0].message


def test_non_utf8_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"description: \xe9t\xe9\n")
    with pytest.raises(InputError) as caught:
        load_policy(path)
    assert "not UTF-8" in caught.value.render()


def test_missing_policy_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_policy(tmp_path / "missing.yaml")
    assert caught.value.render().startswith(f"{tmp_path / 'missing.yaml'}: cannot read file")


def test_rendered_error_names_file_location_and_fix() -> None:
    with pytest.raises(InputError) as caught:
        load_policy_text(rule("rate_limt: 1/minute"), "p.yaml")
    assert caught.value.render() == (
        "p.yaml: tools.t.rules[0]: unknown key 'rate_limt' (fix: did you mean 'rate_limit'?)"
    )


@pytest.mark.parametrize(
    ("text", "guess"),
    [
        ("rule: []\n", "remove it"),
        ("tools:\n  t:\n    name: x\n", "remove it"),
        (rule("windows: day"), "remove it"),
        (rule("state: {counter: c, window: day, max: 1}"), "remove it"),
        (rule("rate_limit: {max: 1, window: 60, counter: c}"), "remove it"),
    ],
    ids=["top-level", "tool", "rule", "state", "rate-limit"],
)
def test_did_you_mean_only_suggests_keys_of_the_same_mapping(text: str, guess: str) -> None:
    errors = [e for e in errors_of(text) if e.message.startswith("unknown key")]
    assert len(errors) == 1 and errors[0].hint.startswith(guess), errors[0].render()
