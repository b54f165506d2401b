"""Decision semantics of docs/POLICY.md ("How a call is decided"), checked against the engine."""

from __future__ import annotations

from typing import Any

import pytest

from intercept.engine import Admission, Decision, Denial, Engine, ToolCall, ToolSchema, json_equal
from intercept.policy import load_policy_text
from intercept.state.base import Reservation
from intercept.state.memory import MemoryStore

NOW = 1_764_115_200.0  # 2025-11-26 00:00:00 UTC


def engine(text: str) -> Engine:
    return Engine(load_policy_text(text))


async def decide(
    eng: Engine,
    store: MemoryStore,
    tool: str,
    args: dict[str, Any] | None = None,
    now: float = NOW,
    schemas: dict[str, ToolSchema] | None = None,
) -> Decision:
    return await eng.decide(ToolCall(tool, args or {}), store, now, schemas or {})


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


async def test_hidden_tool_is_refused_before_anything_else(store: MemoryStore) -> None:
    eng = engine("hide: [secret]\ntools:\n  secret:\n    rules:\n      - action: allow\n")
    denial = await decide(eng, store, "secret")
    assert denial == Denial("hide", "tool is hidden by policy")
    assert denial.text == "[INTERCEPT POLICY DENIED] tool is hidden by policy (rule: hide)"


async def test_hide_star_hides_every_tool(store: MemoryStore) -> None:
    eng = engine('hide: ["*"]\n')
    assert isinstance(await decide(eng, store, "anything"), Denial)
    assert eng.hides("x") and eng.hides("y")


async def test_tool_names_compare_exactly(store: MemoryStore) -> None:
    eng = engine("default: deny\nhide: [drop]\ntools:\n  read:\n    rules: []\n")
    assert isinstance(await decide(eng, store, "read"), Admission)
    for lookalike in ("Read", "READ", "read ", "r\u0435ad", "\uff52\uff45\uff41\uff44", "read\u200b"):
        assert await decide(eng, store, lookalike) == Denial(
            "default", "tool is not allowed by policy (default: deny)"
        )
    assert not eng.hides("Drop") and not eng.hides("dr\u043ep")


async def test_default_deny_ignores_the_wildcard_entry(store: MemoryStore) -> None:
    eng = engine('default: deny\ntools:\n  "*":\n    rules:\n      - rate_limit: 5/minute\n')
    assert isinstance(await decide(eng, store, "unlisted"), Denial)


async def test_default_allow_applies_wildcard_rules_to_unlisted_tools(store: MemoryStore) -> None:
    eng = engine(
        'tools:\n  "*":\n    rules:\n      - name: global\n        rate_limit: {max: 2, window: 60}\n'
    )
    assert isinstance(await decide(eng, store, "a"), Admission)
    assert isinstance(await decide(eng, store, "b"), Admission)
    assert await decide(eng, store, "c") == Denial("global", "rate limit of 2 calls per 60 s reached")


async def test_sliding_rate_limit_denies_exactly_the_max_plus_first(store: MemoryStore) -> None:
    eng = engine(
        "tools:\n  t:\n    rules:\n      - rate_limit: {max: 3, window: 60}\n        reason: slow down\n"
    )
    for i in range(3):
        assert isinstance(await decide(eng, store, "t", now=NOW + i), Admission)
    assert await decide(eng, store, "t", now=NOW + 59) == Denial("tools.t.rules[0]", "slow down")
    assert isinstance(await decide(eng, store, "t", now=NOW + 60.5), Admission)


async def test_calendar_rate_limit_resets_at_the_minute(store: MemoryStore) -> None:
    eng = engine("tools:\n  t:\n    rules:\n      - rate_limit: 2/minute\n")
    assert isinstance(await decide(eng, store, "t", now=NOW + 58), Admission)
    assert isinstance(await decide(eng, store, "t", now=NOW + 59), Admission)
    assert await decide(eng, store, "t", now=NOW + 59.9) == Denial(
        "tools.t.rules[0]", "rate limit of 2/minute reached"
    )
    assert isinstance(await decide(eng, store, "t", now=NOW + 60), Admission)


async def test_argument_conditions_deny_with_the_rule_reason(store: MemoryStore) -> None:
    eng = engine(
        "tools:\n  charge:\n    rules:\n      - name: max single charge\n        conditions:\n"
        "          - path: args.amount\n            op: lte\n            value: 50000\n"
        "        on_deny: Single charge cannot exceed $500.00\n"
    )
    assert isinstance(await decide(eng, store, "charge", {"amount": 50000}), Admission)
    assert await decide(eng, store, "charge", {"amount": 50001}) == Denial(
        "max single charge", "Single charge cannot exceed $500.00"
    )
    assert isinstance(await decide(eng, store, "charge", {}), Denial)  # absent argument: fails closed
    assert isinstance(await decide(eng, store, "charge", {"amount": "1"}), Denial)
    assert isinstance(await decide(eng, store, "charge", {"amount": True}), Denial)


@pytest.mark.parametrize(
    ("op", "value", "arg", "holds"),
    [
        ("eq", 1, 1, True),
        ("eq", 1, 1.0, True),
        ("eq", 1, "1", False),
        ("eq", 1, True, False),
        ("eq", True, True, True),
        ("neq", "a", "b", True),
        ("neq", "a", "a", False),
        ("in", ["a", "b"], "b", True),
        ("in", ["a", "b"], "c", False),
        ("not_in", ["a"], "b", True),
        ("not_in", ["a"], "a", False),
        ("lt", 5, 4, True),
        ("lt", 5, 5, False),
        ("gte", 5, 5, True),
        ("gt", 5, 5.5, True),
        ("regex", "^prod-", "prod-db", True),
        ("regex", "^prod-", "dev-prod-", False),
        ("regex", "x", 1, False),
        ("contains", "DROP", "x; DROP TABLE", True),
        ("contains", "a", ["a", "b"], True),
        ("contains", "c", ["a", "b"], False),
        ("exists", True, 0, True),
        ("exists", False, 0, False),
    ],
)
async def test_operators(store: MemoryStore, op: str, value: Any, arg: Any, holds: bool) -> None:
    import json

    eng = engine(
        f"tools:\n  t:\n    rules:\n      - conditions:\n          - path: args.p.q\n"
        f"            op: {op}\n            value: {json.dumps(value)}\n"
    )
    result = await decide(eng, store, "t", {"p": {"q": arg}})
    assert isinstance(result, Admission) is holds


async def test_absent_argument_holds_only_for_exists_false(store: MemoryStore) -> None:
    for op, value, holds in (("neq", '"x"', False), ("not_in", "[x]", False), ("exists", "false", True)):
        eng = engine(
            f"tools:\n  t:\n    rules:\n      - conditions:\n          - path: args.a\n"
            f"            op: {op}\n            value: {value}\n"
        )
        assert isinstance(await decide(eng, store, "t", {}), Admission) is holds


async def test_deny_rule_with_and_without_conditions(store: MemoryStore) -> None:
    eng = engine(
        "tools:\n  t:\n    rules:\n      - action: deny\n        conditions:\n"
        "          - path: args.env\n            op: eq\n            value: prod\n        reason: no prod\n"
        "  u:\n    rules:\n      - action: deny\n"
    )
    assert await decide(eng, store, "t", {"env": "prod"}) == Denial("tools.t.rules[0]", "no prod")
    assert isinstance(await decide(eng, store, "t", {"env": "dev"}), Admission)
    assert isinstance(await decide(eng, store, "u"), Denial)


async def test_checks_without_counters_run_first_and_no_counter_moves_on_denial(store: MemoryStore) -> None:
    eng = engine(
        "tools:\n  t:\n    rules:\n      - name: limit\n        rate_limit: {max: 1, window: 60}\n"
        "      - name: must be small\n        conditions:\n          - path: args.n\n            op: lt\n"
        "            value: 10\n"
    )
    assert (await decide(eng, store, "t", {"n": 50})) == Denial(
        "must be small", "condition args.n lt 10 does not hold"
    )
    assert await store.value("rate:t:limit", "sliding", 60, NOW) == 0
    assert isinstance(await decide(eng, store, "t", {"n": 1}), Admission)
    assert await decide(eng, store, "t", {"n": 1}) == Denial(
        "limit", "rate limit of 1 calls per 60 s reached"
    )


async def test_spend_cap_counter_with_increment_from_is_a_hard_cap(store: MemoryStore) -> None:
    eng = engine(
        "tools:\n  create_charge:\n    rules:\n      - name: daily spend cap\n        conditions:\n"
        "          - path: state.create_charge.daily_spend\n            op: lte\n            value: 1000\n"
        "        on_deny: Daily spending cap reached\n        state:\n          counter: daily_spend\n"
        "          window: day\n          increment_from: args.amount\n"
    )
    first = await decide(eng, store, "create_charge", {"amount": 600})
    assert isinstance(first, Admission) and isinstance(first.reservation, Reservation)
    assert await decide(eng, store, "create_charge", {"amount": 500}) == Denial(
        "daily spend cap", "Daily spending cap reached"
    )
    assert isinstance(await decide(eng, store, "create_charge", {"amount": 400}), Admission)
    assert await store.value("counter:create_charge:daily_spend", "calendar", 86400, NOW) == 1000
    for bad in ({}, {"amount": -1}, {"amount": "5"}, {"amount": True}):
        denial = await decide(eng, store, "create_charge", bad)
        assert isinstance(denial, Denial) and "args.amount must be a non-negative number" in denial.reason


async def test_counter_read_by_another_rule_sees_this_calls_increment(store: MemoryStore) -> None:
    # The Go original's example: the condition comes before the rule that defines the counter.
    eng = engine(
        "tools:\n  c:\n    rules:\n      - name: cap\n        conditions:\n"
        "          - path: state.c.spend\n            op: lte\n            value: 10\n"
        "      - name: count\n        state:\n          counter: spend\n          window: day\n"
        "          increment_from: args.n\n"
    )
    assert isinstance(await decide(eng, store, "c", {"n": 10}), Admission)
    assert await decide(eng, store, "c", {"n": 1}) == Denial(
        "cap", "condition state.c.spend lte 10 does not hold (counter would be 11)"
    )


async def test_global_counter_counts_every_tool(store: MemoryStore) -> None:
    eng = engine(
        'tools:\n  "*":\n    rules:\n      - name: calls\n        state: {counter: calls, window: hour}\n'
        "  t:\n    rules:\n      - name: at most 2 calls overall\n        conditions:\n"
        "          - path: state._global.calls\n            op: lte\n            value: 2\n"
    )
    assert isinstance(await decide(eng, store, "x"), Admission)
    assert isinstance(await decide(eng, store, "t"), Admission)
    assert isinstance(await decide(eng, store, "t"), Denial)
    assert isinstance(await decide(eng, store, "y"), Admission)  # only t reads the cap


async def test_deny_rule_on_a_counter_negates_the_condition(store: MemoryStore) -> None:
    eng = engine(
        'tools:\n  "*":\n    rules:\n      - state: {counter: calls, window: day}\n'
        "  t:\n    rules:\n      - action: deny\n        reason: too many\n        conditions:\n"
        "          - path: state._global.calls\n            op: gt\n            value: 2\n"
    )
    assert isinstance(await decide(eng, store, "t"), Admission)
    assert isinstance(await decide(eng, store, "t"), Admission)
    assert await decide(eng, store, "t") == Denial("tools.t.rules[0]", "too many")


async def test_deny_rule_with_several_counter_conditions_denies_only_when_all_hold(
    store: MemoryStore,
) -> None:
    eng = engine(
        'tools:\n  "*":\n    rules:\n      - state: {counter: calls, window: day}\n'
        "  spend:\n    rules:\n      - state: {counter: total, window: day, increment_from: args.amount}\n"
        "  t:\n    rules:\n      - action: deny\n        reason: busy and spent\n        conditions:\n"
        "          - path: state._global.calls\n            op: gt\n            value: 2\n"
        "          - path: state.spend.total\n            op: gte\n            value: 100\n"
    )
    for _ in range(3):  # calls passes 2, spend stays 0: only one condition holds
        assert isinstance(await decide(eng, store, "t"), Admission)
    assert isinstance(await decide(eng, store, "spend", {"amount": 150}), Admission)
    assert await decide(eng, store, "t") == Denial("tools.t.rules[0]", "busy and spent")


async def test_required_args_names_the_missing_arguments(store: MemoryStore) -> None:
    eng = engine("tools:\n  t:\n    rules:\n      - validate: {required_args: true}\n")
    schemas = {"t": ToolSchema.learn({"type": "object", "required": ["a", "b"]})}
    assert eng.needs_schema("t") and not eng.needs_schema("other")
    assert await decide(eng, store, "t", {"a": 1}, schemas=schemas) == Denial(
        "tools.t.rules[0]", "missing required argument: b"
    )
    assert isinstance(await decide(eng, store, "t", {"a": 1, "b": None}, schemas=schemas), Admission)
    unknown = await decide(eng, store, "t", {"a": 1, "b": 2})
    assert isinstance(unknown, Denial) and "schema is unknown" in unknown.reason


async def test_schema_validation_uses_jsonschema_and_fails_closed_on_bad_schemas(store: MemoryStore) -> None:
    eng = engine("tools:\n  t:\n    rules:\n      - validate: {schema: true}\n")
    schemas = {
        "t": ToolSchema.learn({"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}})
    }
    assert isinstance(await decide(eng, store, "t", {"n": 5}, schemas=schemas), Admission)
    denial = await decide(eng, store, "t", {"n": 6}, schemas=schemas)
    assert isinstance(denial, Denial) and "at n" in denial.reason
    broken = {"t": ToolSchema.learn({"type": "object", "properties": {"n": {"$ref": "#/nowhere"}}})}
    assert isinstance(await decide(eng, store, "t", {"n": 1}, schemas=broken), Denial)
    invalid = {"t": ToolSchema.learn({"type": 12})}
    assert isinstance(await decide(eng, store, "t", {}, schemas=invalid), Denial)


SECRET = "sk-live-SECRET-4242"


@pytest.mark.parametrize(
    ("arguments", "where"),
    [
        ({"token": SECRET}, "at token, the schema's 'type' constraint ('integer')"),
        ({"token": 1, "items": [{"kind": SECRET}]}, "at items[].kind, the schema's 'enum' constraint"),
        ({"token": 1, "headers": {SECRET: "x"}}, "at headers, the schema's 'additionalProperties'"),
        ({"token": 1, SECRET: 1}, "at (arguments), the schema's 'additionalProperties'"),
        ({"token": 1, "note": SECRET * 10}, "at note, the schema's 'maxLength' constraint (20)"),
    ],
)
async def test_schema_denials_never_quote_the_arguments(
    store: MemoryStore, arguments: dict[str, Any], where: str
) -> None:
    # A denial reason is written to the audit log and shown by `intercept status`.
    eng = engine("tools:\n  t:\n    rules:\n      - validate: {schema: true}\n")
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "token": {"type": "integer"},
            "note": {"type": "string", "maxLength": 20},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}}},
            },
            "headers": {"type": "object", "additionalProperties": False},
        },
    }
    denial = await decide(eng, store, "t", arguments, schemas={"t": ToolSchema.learn(schema)})
    assert isinstance(denial, Denial)
    assert where in denial.reason
    assert "SECRET" not in denial.reason and "SECRET" not in denial.text


async def test_counter_keys_survive_a_reload_that_keeps_the_rule_name(store: MemoryStore) -> None:
    text = "tools:\n  t:\n    rules:\n      - name: lim\n        rate_limit: {max: 2, window: 60}\n"
    assert isinstance(await decide(engine(text), store, "t"), Admission)
    reloaded = engine("description: edited\n" + text)
    assert isinstance(await decide(reloaded, store, "t"), Admission)
    assert isinstance(await decide(reloaded, store, "t"), Denial)


async def test_store_failure_fails_closed_unless_open(caplog: pytest.LogCaptureFixture) -> None:
    from intercept.state.base import StateError

    class Broken(MemoryStore):
        async def reserve(self, checks: Any, now: float) -> Any:
            raise StateError("down")

    eng = engine("tools:\n  t:\n    rules:\n      - rate_limit: 5/minute\n")
    denial = await eng.decide(ToolCall("t", {}), Broken(), NOW, {})
    assert isinstance(denial, Denial) and denial.rule == "state"
    assert await eng.decide(ToolCall("t", {}), Broken(), NOW, {}, fail_open=True) == Admission(
        None, "state-fail-open"
    )
    failures = [r.getMessage() for r in caplog.records if r.name == "intercept.engine"]
    assert failures == [
        "counter store failed (down); failing closed",
        "counter store failed (down); failing open",
    ]


def test_json_equal_follows_json_types() -> None:
    assert (
        json_equal(1, 1.0) and not json_equal(0, False) and not json_equal("1", 1) and json_equal(None, None)
    )
