"""The engine's side of `require_approval`: which calls need a human, and what is reserved when."""

from __future__ import annotations

import pytest

from intercept.engine import Admission, ApprovalNeed, Denial, Engine, ToolCall
from intercept.policy import load_policy_text
from intercept.state.memory import MemoryStore
from intercept.util.errors import InputError

NOW = 1_764_115_200.0
POLICY = """
tools:
  pay:
    rules:
      - name: big
        action: require_approval
        conditions: [{path: args.amount, op: gt, value: 100}]
      - name: once
        rate_limit: {max: 1, window: 60}
  "*":
    rules:
      - name: ask always
        action: require_approval
        approval: {timeout: 7}
"""


@pytest.fixture
def engine() -> Engine:
    return Engine(load_policy_text(POLICY))


async def test_a_matching_call_needs_approval_and_reserves_nothing(engine: Engine) -> None:
    store = MemoryStore()
    decision = await engine.decide(ToolCall("pay", {"amount": 500}), store, NOW, {})
    assert decision == ApprovalNeed("big", 120)
    assert await store.value("rate:pay:once", "sliding", 60, NOW) == 0
    approved = await engine.decide(ToolCall("pay", {"amount": 500}, approved=True), store, NOW, {})
    assert isinstance(approved, Admission) and approved.reservation is not None
    assert await store.value("rate:pay:once", "sliding", 60, NOW) == 1


async def test_conditions_choose_the_calls_and_the_first_applying_rule_names_it(engine: Engine) -> None:
    store = MemoryStore()
    assert engine.approval_needed(ToolCall("pay", {"amount": 5})) == ApprovalNeed("ask always", 7)
    assert engine.approval_needed(ToolCall("other", {})) == ApprovalNeed("ask always", 7)
    assert isinstance(
        await engine.decide(ToolCall("pay", {"amount": 5}, approved=True), store, NOW, {}), Admission
    )


async def test_a_call_other_rules_refuse_is_denied_not_held(engine: Engine) -> None:
    store = MemoryStore()
    await engine.decide(ToolCall("pay", {"amount": 5}, approved=True), store, NOW, {})
    decision = await engine.decide(ToolCall("pay", {"amount": 500}), store, NOW, {})
    assert isinstance(decision, Denial) and decision.rule == "once"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{action: allow, approval: {timeout: 5}}", "approval applies to action: require_approval only"),
        ("{action: require_approval, approval: {timeout: 0}}", "timeout"),
        ("{action: require_approval, approval: {wait: 5}}", "wait"),
    ],
)
def test_approval_fields_are_checked(rule: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_policy_text(f"tools:\n  t:\n    rules:\n      - {rule}\n")
    assert message in caught.value.render()


def test_a_counter_condition_cannot_choose_calls_for_approval() -> None:
    text = """
tools:
  t:
    rules:
      - {state: {counter: c, window: day}}
      - action: require_approval
        conditions: [{path: state.t.c, op: gt, value: 1}]
"""
    with pytest.raises(InputError) as caught:
        load_policy_text(text)
    assert "conditions can test arguments only" in caught.value.render()


def test_the_rule_round_trips_through_yaml() -> None:
    from intercept.policy import dump_policy

    policy = load_policy_text(POLICY)
    assert load_policy_text(dump_policy(policy)) == policy
