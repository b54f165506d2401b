"""`intercept test` cases: the format's located errors, and runs against the real engine and clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercept import policytest
from intercept.engine import Engine
from intercept.policy import load_policy_text
from intercept.policytest import (
    KNOWN_KEYS,
    CaseFile,
    CaseResult,
    approvals_supported,
    load_cases,
    parse_cases,
    run_cases,
    summary,
)
from intercept.util.errors import InputError
from intercept.util.safeyaml import load_yaml_text

DOCS = (Path(__file__).resolve().parents[3] / "docs" / "POLICY.md").read_text(encoding="utf-8")

POLICY = """
tools:
  search:
    rules:
      - name: three a minute
        rate_limit: {max: 3, window: 60}
  charge:
    rules:
      - name: daily cap
        conditions:
          - {path: state.charge.spent, op: lte, value: 100}
        state: {counter: spent, window: day, increment_from: args.amount}
      - name: big charges on trial
        mode: shadow
        conditions:
          - {path: args.amount, op: lt, value: 50}
  run:
    rules:
      - name: job named
        validate: {required_args: true}
  drop:
    rules:
      - name: never
        action: deny
        reason: dropping is not allowed
"""


def cases(text: str) -> CaseFile:
    return parse_cases(load_yaml_text(text), "cases.yaml")


def run(text: str, policy: str = POLICY) -> list[CaseResult]:
    return run_cases(Engine(load_policy_text(policy)), cases(text))


def errors(text: str) -> list[str]:
    with pytest.raises(InputError) as caught:
        cases(text)
    return [e.render() for e in caught.value.errors]


# --- the format -------------------------------------------------------------------------------


def test_unknown_keys_are_located_errors_with_the_nearest_key() -> None:
    found = errors(
        """
schemaz: {}
cases:
  - name: a
    cals: []
  - name: b
    calls:
      - {tool: t, expect: allow, argumets: {}}
"""
    )
    assert "(top level): unknown key 'schemaz' (fix: did you mean 'schemas'?)" in found
    assert "cases[0]: unknown key 'cals' (fix: did you mean 'calls'?)" in found
    assert "cases[1].calls[0]: unknown key 'argumets' (fix: did you mean 'arguments'?)" in found


def test_every_problem_is_reported_with_its_location() -> None:
    found = errors(
        """
cases:
  - name: a
    start: 2026-01-01T00:00:00
    calls:
      - {tool: t, expect: maybe}
      - {tool: t, expect: allow, rule: r}
      - {tool: t, expect: deny, at: 1, after: 2}
      - {tool: t, expect: deny, is_error: true}
      - {tool: t, expect: deny, would_deny: [x]}
      - {tool: t, expect: allow, arguments: {when: 2024-01-01}}
      - {tool: t, expect: allow, repeat: 0}
  - name: a
    calls:
      - {tool: t, expect: allow, at: 10}
      - {tool: t, expect: allow, at: 5}
"""
    )
    expected = [
        "cases[0].start: start has no time zone",
        "cases[0].calls[0].expect: invalid value 'maybe' (fix: use one of 'allow', 'deny' or",
        "cases[0].calls[1]: `rule` names the rule that denies",
        "cases[0].calls[2]: give `at` or `after`, not both",
        "cases[0].calls[3]: `is_error` describes the server's answer",
        "cases[0].calls[4]: `would_deny` is recorded only for calls the policy allows",
        "cases[0].calls[5].arguments: a value is a YAML date, not a JSON value",
        "cases[0].calls[6].repeat: Input should be greater than or equal to 1",
        "cases[1]: calls[1] is at 5 s, before the call ahead of it (10 s)",
    ]
    for prefix in expected:
        assert any(line.startswith(prefix) for line in found), (prefix, found)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a cases file is a mapping with a `cases:` list"),
        ("- name: a\n", "a cases file is a mapping with a `cases:` list"),
        ("cases: []\n", "List should have at least 1 item"),
        ("cases:\n" + "  - {name: a, calls: [{tool: t, expect: allow}]}\n" * 2, "two cases are named 'a'"),
        ("schemas: {t: [1]}\ncases:\n  - {name: a, calls: [{tool: t, expect: allow}]}\n", "valid dictionary"),
    ],
)
def test_file_level_errors(text: str, message: str) -> None:
    assert any(message in line for line in errors(text)), errors(text)


def test_an_unreadable_file_is_one_located_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_cases(tmp_path / "missing.yaml")
    assert (
        caught.value.source.endswith("missing.yaml") and "cannot read file" in caught.value.errors[0].message
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases: [\n")
    with pytest.raises(InputError) as caught:
        load_cases(bad)
    assert "not valid YAML" in caught.value.errors[0].message


def test_every_key_of_the_format_is_documented() -> None:
    section = DOCS.split("## Testing a policy", 1)[1]
    for model, keys in KNOWN_KEYS.items():
        assert set(keys) == set(getattr(policytest, model).model_fields), model
        for key in keys:
            assert f"| `{key}` |" in section, f"{model}.{key} is missing from docs/POLICY.md"


def test_the_docs_example_passes_against_the_docs_policy(tmp_path: Path) -> None:
    section = DOCS.split("## Testing a policy", 1)[1]
    policy_text, cases_text = [block.split("```", 1)[0] for block in section.split("```yaml\n")[1:3]]
    results = run(cases_text, policy_text)
    assert results and all(r.passed for r in results), [r.render() for r in results]


# --- runs -------------------------------------------------------------------------------------


def test_a_passing_case_reports_its_call_count() -> None:
    [result] = run(
        """
cases:
  - name: searches are limited
    calls:
      - {tool: search, expect: allow, repeat: 3}
      - {tool: search, expect: deny, rule: three a minute}
      - {tool: search, expect: allow, after: 60}
"""
    )
    assert result.passed and result.render() == ["PASS  searches are limited (5 calls)"]


def test_the_clock_follows_at_after_and_repeat() -> None:
    results = run(
        """
cases:
  - name: after spaces each repetition
    calls:
      - {tool: search, expect: allow, repeat: 3, after: 20}
      - {tool: search, expect: deny}
      - {tool: search, expect: allow, after: 20}
  - name: at is from the start
    calls:
      - {tool: search, expect: allow, repeat: 3}
      - {tool: search, expect: deny, at: 59.5}
      - {tool: search, expect: allow, at: 60}
"""
    )
    # Calls at 20, 40 and 60, then 60 again (denied), then 80, when the one at 20 has left the window.
    assert [r.passed for r in results] == [True, True]


def test_each_case_starts_from_empty_counters_and_its_own_start() -> None:
    results = run(
        """
cases:
  - name: spend most of the day's cap
    start: 2026-03-01T23:59:00Z
    calls:
      - {tool: charge, arguments: {amount: 90}, expect: allow}
      - {tool: charge, arguments: {amount: 20}, expect: deny, rule: daily cap}
      - {tool: charge, arguments: {amount: 90}, after: 60, expect: allow}
  - name: a new case has an empty store
    calls:
      - {tool: charge, arguments: {amount: 100}, expect: allow}
"""
    )
    assert [r.passed for r in results] == [True, True]


def test_is_error_gives_the_counters_back() -> None:
    [result] = run(
        """
cases:
  - name: failed charges are not counted
    calls:
      - {tool: charge, arguments: {amount: 100}, is_error: true, expect: allow}
      - {tool: charge, arguments: {amount: 100}, expect: allow}
      - {tool: charge, arguments: {amount: 1}, expect: deny}
"""
    )
    assert result.passed


def test_a_failure_names_the_call_by_position_and_tool_never_by_its_arguments() -> None:
    [result] = run(
        """
cases:
  - name: wrong expectation
    calls:
      - {tool: search, expect: allow, repeat: 5, arguments: {q: sk_live_SECRET}}
      - {tool: search, expect: allow}
"""
    )
    assert result.failure is not None and result.decisions == 4
    lines = result.render()
    assert lines == [
        "FAIL  wrong expectation",
        "      call 1 (search), repetition 4 of 5: expected allow, "
        "got deny by rule three a minute: rate limit of 3 calls per 60 s reached",
    ]
    assert "sk_live_SECRET" not in "\n".join(lines)


def test_deny_rule_and_reason_are_compared_and_shown() -> None:
    results = run(
        """
cases:
  - name: right rule
    calls: [{tool: drop, expect: deny, rule: never}]
  - name: wrong rule
    calls: [{tool: drop, expect: deny, rule: always}]
  - name: allowed instead
    calls: [{tool: search, expect: deny}]
"""
    )
    assert results[0].passed
    assert results[1].render()[1] == (
        "      call 1 (drop): expected deny by rule always, got deny by rule never: dropping is not allowed"
    )
    assert results[2].render()[1] == "      call 1 (search): expected deny, got allow"
    assert summary(results) == "3 cases: 1 passed, 2 failed"


def test_schemas_are_what_validation_reads() -> None:
    text = """
schemas:
  run: {type: object, required: [job]}
cases:
  - name: job is required
    calls:
      - {tool: run, expect: deny, rule: job named}
      - {tool: run, arguments: {job: nightly}, expect: allow}
"""
    assert all(r.passed for r in run(text))
    [unknown] = run(text.replace("  run: {type", "  other: {type"))
    assert unknown.failure is not None
    assert "no input schema for this tool under `schemas:`" in unknown.render()[1]


def test_would_deny_of_shadow_rules_can_be_expected() -> None:
    results = run(
        """
cases:
  - name: the trial rule objects to big charges
    calls:
      - {tool: charge, arguments: {amount: 60}, expect: allow, would_deny: [big charges on trial]}
      - {tool: charge, arguments: {amount: 10}, expect: allow, would_deny: []}
  - name: wrong
    calls:
      - {tool: charge, arguments: {amount: 10}, expect: allow, would_deny: [big charges on trial]}
"""
    )
    assert results[0].passed
    assert results[1].render()[1] == (
        "      call 1 (charge): expected allow with would_deny [big charges on trial], "
        "got allow with would_deny [none]"
    )


def test_expecting_require_approval_fails_clearly_until_approvals_exist() -> None:
    [result] = run("cases:\n  - name: ask\n    calls: [{tool: search, expect: require_approval}]\n")
    assert result.failure is not None
    line = result.render()[1]
    assert line.startswith("      call 1 (search): expected require_approval, got allow")
    if not approvals_supported():
        assert "no approval rules yet" in line
