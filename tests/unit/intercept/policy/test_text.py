"""intercept.policy.text: every scalar, tool name and hostile string written as YAML reads back exactly."""

from __future__ import annotations

import math

import pytest

from intercept.policy import dump_policy, load_policy_text, yaml_quoted, yaml_scalar
from intercept.util.safeyaml import load_yaml_text


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "true",
        "No",
        "null",
        "~",
        "123",
        "1.5",
        "0x1F",
        "-",
        "a: b",
        "#c",
        "'q'",
        '"d"',
        "a\\b",
        " lead",
        "trail ",
        "line\nbreak",
        "tab\there",
        "nul\x00",
        "del\x7f",
        "nel\x85",
        "ls\u2028ps\u2029",
        "bom\ufeff",
        "caf\u00e9",
        "emoji \U0001f600",
        "\ufffe",
        "{x}",
        "[y]",
        "!tag",
        "&a",
        "*a",
        "%p",
        "@",
        "`",
        "",
        "2024-01-01",
        ".inf",
        ".nan",
        "<<",
        "=",
    ],
)
def test_string_scalars_read_back_exactly(value: str) -> None:
    assert load_yaml_text(f"k: {yaml_scalar(value)}\n") == {"k": value}


@pytest.mark.parametrize(
    "value", [0, -7, 10**30, 0.5, -2.25, 1.0, 1e-07, 1e20, 1.5e300, -3e-12, True, False, None]
)
def test_non_string_scalars_read_back_with_their_type(value: object) -> None:
    back = load_yaml_text(f"k: {yaml_scalar(value)}\n")["k"]
    assert back == value and type(back) is type(value)
    assert not (isinstance(value, float) and math.isnan(value))


@pytest.mark.parametrize(
    "tool", ["true", "on", "NULL", "1", "1.5", "-x", ".inf", "_a", "a.b-c", "Yes", "0x10"]
)
def test_tool_names_that_look_like_other_types_round_trip(tool: str) -> None:
    policy = load_policy_text(f"tools:\n  {yaml_quoted(tool)}:\n    rules:\n      - action: allow\n")
    assert list(load_policy_text(dump_policy(policy)).tools) == [tool]


def test_hostile_strings_round_trip_through_dump() -> None:
    hostile = 'x"\n  evil:\n    rules: []\n# \u2028\x85\x00'
    text = (
        f"description: {yaml_quoted(hostile)}\ntools:\n  t:\n    rules:\n"
        f"      - action: deny\n        reason: {yaml_quoted(hostile)}\n"
        f"        conditions: [{{path: args.x, op: in, value: [{yaml_quoted(hostile)}, 1]}}]\n"
    )
    policy = load_policy_text(text)
    again = load_policy_text(dump_policy(policy))
    assert again == policy and list(again.tools) == ["t"]


def test_counter_names_that_look_like_numbers_round_trip() -> None:
    policy = load_policy_text(
        "tools:\n  t:\n    rules:\n      - state: {counter: '123', window: day, increment: 0.5}\n"
        "      - conditions: [{path: state.t.123, op: lt, value: 3}]\n"
    )
    assert load_policy_text(dump_policy(policy)) == policy
