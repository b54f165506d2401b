"""Property test: a policy-shaped document loads, round-trips and compiles, or fails with located errors.

This holds the contract between the two flows: a policy that validates is one the engine can enforce,
and what `dump_policy` publishes reads back as the same policy.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intercept.engine import Engine
from intercept.policy import OPERATORS, dump_policy, load_policy_text, parse_policy
from intercept.util.errors import InputError

TOOL_KEYS = st.sampled_from(["a", "b", "create_charge", "*", "true", "1x", "x.y", "-x", "bad name", "Null"])
COUNTERS = st.sampled_from(["c", "d", "123", "yes", "bad name"])
TEXT = st.text(max_size=12)
PLAIN = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(), TEXT)
VALUES = st.one_of(PLAIN, st.lists(PLAIN, max_size=3), st.dictionaries(TEXT, PLAIN, max_size=2))
PATHS = st.one_of(
    st.sampled_from(
        ["args.x", "args.a.b", "state.a.c", "state._global.c", "state.b.d", "state.*.c", "amount"]
    ),
    st.builds(lambda s: f"args.{s}", TEXT),
)
CONDITION = st.fixed_dictionaries(
    {"path": PATHS, "op": st.sampled_from([*OPERATORS, "like"])}, optional={"value": VALUES}
)
RATE_LIMIT = st.one_of(
    st.sampled_from(["5/minute", "1/hour", "10/day", "0/day", "x", " 2 / hour "]),
    st.fixed_dictionaries({"max": st.integers(-1, 100), "window": st.integers(-1, 100)}),
    st.integers(),
)
STATE = st.fixed_dictionaries(
    {"counter": COUNTERS, "window": st.sampled_from(["minute", "hour", "day", "week"])},
    optional={
        "increment": st.one_of(st.floats(-1, 10), st.integers(-1, 5)),
        "increment_from": st.sampled_from(["args.amount", "amount"]),
    },
)
RULE = st.fixed_dictionaries(
    {},
    optional={
        "name": TEXT,
        "action": st.sampled_from(["allow", "evaluate", "deny", "block"]),
        "reason": TEXT,
        "on_deny": TEXT,
        "rate_limit": RATE_LIMIT,
        "conditions": st.lists(CONDITION, max_size=3),
        "state": STATE,
        "validate": st.fixed_dictionaries(
            {}, optional={"required_args": st.booleans(), "schema": st.booleans()}
        ),
        "rate_limt": st.just("1/minute"),
    },
)
POLICY = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from(["1", 1, "2", True]),
        "description": TEXT,
        "default": st.sampled_from(["allow", "deny", "maybe"]),
        "hide": st.lists(TOOL_KEYS, max_size=3),
        "tools": st.dictionaries(
            TOOL_KEYS, st.fixed_dictionaries({"rules": st.lists(RULE, max_size=3)}), max_size=3
        ),
    },
)

NUMBER = st.one_of(st.integers(-(10**9), 10**9), st.floats(allow_nan=False, allow_infinity=False))
SCALAR = st.one_of(st.booleans(), NUMBER, TEXT)
# Path segments: any text YAML can carry, minus '.', whitespace and surrogates.
SEGMENT = st.text(
    st.characters(
        blacklist_categories=["Cs"], blacklist_characters=". \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"
    ),
    min_size=1,
    max_size=6,
)
ARG_PATH = st.builds(lambda parts: "args." + ".".join(parts), st.lists(SEGMENT, min_size=1, max_size=3))
VALID_CONDITION = st.one_of(
    st.fixed_dictionaries(
        {"path": ARG_PATH, "op": st.sampled_from(["lt", "lte", "gt", "gte"]), "value": NUMBER}
    ),
    st.fixed_dictionaries(
        {
            "path": ARG_PATH,
            "op": st.sampled_from(["in", "not_in"]),
            "value": st.lists(st.one_of(st.none(), SCALAR), min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "path": ARG_PATH,
            "op": st.just("regex"),
            "value": st.sampled_from(["^a", "(?i)\\bdrop\\b", "x+$", "[\"']"]),
        }
    ),
    st.fixed_dictionaries({"path": ARG_PATH, "op": st.just("contains"), "value": SCALAR}),
    st.fixed_dictionaries(
        {"path": ARG_PATH, "op": st.sampled_from(["eq", "neq"]), "value": st.one_of(st.none(), SCALAR)}
    ),
    st.fixed_dictionaries({"path": ARG_PATH, "op": st.just("exists")}, optional={"value": st.booleans()}),
    st.fixed_dictionaries(
        {"path": st.just("state._global.calls"), "op": st.sampled_from(["lt", "eq", "gte"]), "value": NUMBER}
    ),
)
VALID_RULE = st.one_of(
    st.fixed_dictionaries(
        {"action": st.just("deny")},
        optional={
            "name": TEXT,
            "reason": TEXT,
            "conditions": st.lists(VALID_CONDITION, min_size=1, max_size=3),
        },
    ),
    st.fixed_dictionaries(
        {"action": st.sampled_from(["allow", "evaluate"])},
        optional={
            "name": TEXT,
            "on_deny": TEXT,
            "rate_limit": st.one_of(
                st.builds(
                    lambda n, u: f"{n}/{u}", st.integers(1, 10**6), st.sampled_from(["minute", "hour", "day"])
                ),
                st.fixed_dictionaries({"max": st.integers(1, 10**6), "window": st.integers(1, 86400)}),
            ),
            "validate": st.fixed_dictionaries(
                {}, optional={"required_args": st.booleans(), "schema": st.booleans()}
            ),
        },
    ),
    st.fixed_dictionaries(
        {"conditions": st.lists(VALID_CONDITION, min_size=1, max_size=3)},
        optional={
            "name": TEXT,
            "on_deny": TEXT,
            "state": st.fixed_dictionaries(
                {
                    "counter": st.sampled_from(["spend", "n-1", "007"]),
                    "window": st.sampled_from(["minute", "hour", "day"]),
                },
                optional={"increment": st.floats(0.001, 1000), "increment_from": ARG_PATH},
            ),
        },
    ),
)
VALID_POLICY = st.fixed_dictionaries(
    {
        "tools": st.dictionaries(
            st.text(st.sampled_from("aZ09_.-"), min_size=1, max_size=8) | st.just("*"),
            st.fixed_dictionaries({"rules": st.lists(VALID_RULE, max_size=4)}),
            max_size=4,
        )
    },
    optional={
        "default": st.sampled_from(["allow", "deny"]),
        "description": TEXT,
        "hide": st.lists(st.text(st.sampled_from("ab_."), min_size=1, max_size=3), max_size=2, unique=True),
    },
)
GLOBAL_CALLS = {"rules": [{"name": "count", "state": {"counter": "calls", "window": "minute"}}]}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POLICY)
def test_policy_loads_round_trips_and_compiles_or_fails_with_located_errors(data: dict[str, Any]) -> None:
    try:
        policy = parse_policy(data, "fuzz.yaml")
    except InputError as exc:
        assert exc.errors
        assert all(e.message and e.hint for e in exc.errors), exc.render()
        return
    text = dump_policy(policy)
    again = load_policy_text(text)
    assert again == policy
    assert dump_policy(again) == text
    Engine(policy)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALID_POLICY)
def test_well_formed_policies_load_round_trip_and_compile(data: dict[str, Any]) -> None:
    data["tools"]["*"] = {"rules": [*GLOBAL_CALLS["rules"], *data["tools"].get("*", {}).get("rules", [])]}
    try:
        policy = parse_policy(data, "fuzz.yaml")
    except InputError as exc:
        # Only cross-rule problems are left for a generator that builds every rule well-formed.
        assert all("counter" in e.message for e in exc.errors), exc.render()
        return
    text = dump_policy(policy)
    again = load_policy_text(text)
    assert again == policy
    assert dump_policy(again) == text
    Engine(policy)
