"""Shadow evaluation: `mode: shadow` rules in the engine, `intercept run --shadow` in the router.

Both record what enforcing would have denied (`would_deny`) and neither moves a counter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from intercept.audit import AuditLog
from intercept.engine import STATE_DENIAL, Admission, Denial, Engine, ToolCall, ToolSchema
from intercept.policy import dump_policy, load_policy_text
from intercept.proxy import Router
from intercept.shadow import shadow_decide
from intercept.state.base import CounterCheck, Refusal, Reservation, StateError, WindowKind
from intercept.state.memory import MemoryStore
from intercept.state.readonly import would_refuse
from intercept.util.errors import InputError
from tests.unit.intercept.test_proxy import Audit

NOW = 1_764_115_200.0  # 2025-11-26 00:00:00 UTC

TRIAL = """
tools:
  send:
    rules:
      - name: hourly budget
        conditions:
          - {path: state.send.sent, op: lte, value: 3}
        state: {counter: sent, window: hour}
      - name: tighter budget
        mode: shadow
        conditions:
          - {path: state.send.sent, op: lte, value: 2}
        reason: at most 2 an hour
      - name: no bcc
        mode: shadow
        action: deny
        conditions:
          - {path: args.bcc, op: exists}
  ping:
    rules:
      - name: ping on trial
        mode: shadow
        action: deny
"""


def engine(text: str = TRIAL) -> Engine:
    return Engine(load_policy_text(text))


async def decide(eng: Engine, store: MemoryStore, tool: str, args: dict[str, Any] | None = None) -> Any:
    return await eng.decide(ToolCall(tool, args or {}), store, NOW, {})


async def sent(store: MemoryStore) -> float:
    return await store.value("counter:send:sent", "calendar", 3600, NOW)


# --- mode: shadow in an enforced policy -------------------------------------------------------


async def test_a_shadow_rule_records_but_never_denies() -> None:
    store = MemoryStore()
    eng = engine()
    first = await decide(eng, store, "send", {"bcc": "x"})
    assert isinstance(first, Admission) and first.reservation is not None
    assert first.would_deny == (Denial("no bcc", "denied by policy"),)
    second = await decide(eng, store, "send")
    assert isinstance(second, Admission) and second.would_deny == ()
    third = await decide(eng, store, "send")
    assert isinstance(third, Admission)
    # The enforced budget admits a third call; the shadow budget of 2 would have refused it.
    assert third.would_deny == (Denial("tighter budget", "at most 2 an hour"),)
    assert await sent(store) == 3


async def test_shadow_rules_count_nothing_and_change_no_enforced_decision() -> None:
    with_trial, without = MemoryStore(), MemoryStore()
    plain = engine(re.sub(r"      - name: (tighter budget|no bcc)\n(        .*\n)+", "", TRIAL))
    assert "shadow" not in dump_policy(plain.policy).split("ping")[0]
    decisions: list[tuple[str, str]] = []
    for store, eng in ((with_trial, engine()), (without, plain)):
        for args in ({}, {"bcc": 1}, {}, {}, {}):
            decision = await decide(eng, store, "send", args)
            decisions.append((type(decision).__name__, getattr(decision, "rule", "")))
    assert decisions[:5] == decisions[5:]
    assert decisions[4] == ("Denial", "hourly budget")
    assert await sent(with_trial) == await sent(without) == 3


async def test_shadow_rules_are_not_asked_about_a_call_the_policy_denies() -> None:
    store = MemoryStore()
    eng = engine()
    for _ in range(3):
        await decide(eng, store, "send")
    denied = await decide(eng, store, "send", {"bcc": 1})
    assert denied == Denial(
        "hourly budget", "condition state.send.sent lte 3 does not hold (counter would be 4)"
    )


async def test_a_shadow_deny_rule_without_conditions_records_every_call() -> None:
    store = MemoryStore()
    decision = await decide(engine(), store, "ping")
    assert isinstance(decision, Admission) and decision.reservation is None
    assert decision.would_deny == (Denial("ping on trial", "denied by policy"),)


async def test_shadow_validation_and_argument_conditions_are_checked_like_enforced_ones() -> None:
    eng = engine(
        """
tools:
  run:
    rules:
      - mode: shadow
        validate: {required_args: true}
      - name: small only
        mode: shadow
        conditions:
          - {path: args.n, op: lt, value: 10}
"""
    )
    schemas = {"run": ToolSchema.learn({"type": "object", "required": ["job"]})}
    decision = await eng.decide(ToolCall("run", {"n": 50}), MemoryStore(), NOW, schemas)
    assert isinstance(decision, Admission)
    assert decision.would_deny == (
        Denial("tools.run.rules[0]", "missing required argument: job"),
        Denial("small only", "condition args.n lt 10 does not hold"),
    )
    assert eng.needs_schema("run")
    clean = await eng.decide(ToolCall("run", {"n": 1, "job": "x"}), MemoryStore(), NOW, schemas)
    assert clean == Admission(None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("rate_limit: 5/minute", "a shadow rule counts nothing"),
        ("state: {counter: c, window: day}", "a shadow rule counts nothing"),
    ],
)
def test_a_shadow_rule_cannot_carry_a_limit_of_its_own(extra: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_policy_text(f"tools:\n  t:\n    rules:\n      - mode: shadow\n        {extra}\n")
    [error] = caught.value.errors
    assert error.location == "tools.t.rules[0]" and message in error.message


def test_an_unknown_mode_is_an_error_naming_the_choices() -> None:
    with pytest.raises(InputError) as caught:
        load_policy_text("tools:\n  t:\n    rules:\n      - mode: dry-run\n")
    [error] = caught.value.errors
    assert error.location == "tools.t.rules[0].mode"
    assert "'dry-run'" in error.message and "'enforce'" in error.hint and "'shadow'" in error.hint


def test_mode_round_trips_through_yaml() -> None:
    policy = load_policy_text(TRIAL)
    text = dump_policy(policy)
    assert text.count("mode: shadow") == 3 and "mode: enforce" not in text
    assert load_policy_text(text) == policy


def test_the_shadow_example_in_the_policy_docs_loads() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "POLICY.md").read_text(encoding="utf-8")
    section = docs.split("### Shadow rules", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    policy = load_policy_text(example)
    assert [r.mode for r in policy.tools["send_email"].rules] == ["enforce", "shadow", "shadow"]


# --- read-only counter checks -----------------------------------------------------------------


async def test_would_refuse_answers_like_reserve_and_changes_nothing() -> None:
    store = MemoryStore()
    limit = CounterCheck("rate:k", "sliding", 60, 1.0, "lte", 2.0)
    for _ in range(2):
        assert isinstance(await store.reserve([limit], NOW), Reservation)
    assert await would_refuse(store, [limit], NOW) == Refusal(0, 3.0)
    assert await store.value("rate:k", "sliding", 60, NOW) == 2
    assert await would_refuse(store, [limit], NOW + 61) is None
    # Increments named in `before` are seen by the later checks, not reported themselves.
    counter = CounterCheck("counter:c", "calendar", 60, 5.0)
    cap = CounterCheck("counter:c", "calendar", 60, 0.0, "lte", 4.0)
    assert await would_refuse(store, [cap], NOW) is None
    assert await would_refuse(store, [cap], NOW, before=[counter]) == Refusal(0, 5.0)
    assert await store.value("counter:c", "calendar", 60, NOW) == 0


# --- intercept run --shadow --------------------------------------------------------------------

ENFORCED = """
hide: [secret]
tools:
  limited:
    rules:
      - name: one a minute
        rate_limit: {max: 1, window: 60}
  blocked:
    rules:
      - name: never
        action: deny
        reason: blocked by policy
  send:
    rules:
      - name: budget
        conditions:
          - {path: state.send.sent, op: lte, value: 5}
        state: {counter: sent, window: day}
      - name: tight trial
        mode: shadow
        conditions:
          - {path: state.send.sent, op: lte, value: 1}
      - name: on trial
        mode: shadow
        conditions:
          - {path: args.to, op: eq, value: me}
"""


async def test_shadow_decide_admits_everything_and_records_the_policys_denial() -> None:
    store = MemoryStore()
    eng = engine(ENFORCED)

    async def shadow(tool: str, args: dict[str, Any] | None = None) -> Admission:
        return await shadow_decide(eng, ToolCall(tool, args or {}), store, NOW, {})

    assert await shadow("secret") == Admission(None, would_deny=(Denial("hide", "tool is hidden by policy"),))
    assert await shadow("blocked") == Admission(None, would_deny=(Denial("never", "blocked by policy"),))
    # Nothing is counted, so a limit of one is never reached by a shadow proxy's own calls...
    for _ in range(3):
        assert await shadow("limited") == Admission(None)
    assert await store.value("rate:limited:one a minute", "sliding", 60, NOW) == 0
    # ...but is reported once the store holds what an enforcing proxy counted.
    await eng.decide(ToolCall("limited", {}), store, NOW, {})
    assert await shadow("limited") == Admission(
        None, would_deny=(Denial("one a minute", "rate limit of 1 calls per 60 s reached"),)
    )
    # A shadow rule's counter condition sees this call's increment although nothing is reserved.
    assert await shadow("send", {"to": "me"}) == Admission(None)
    await eng.decide(ToolCall("send", {"to": "me"}), store, NOW, {})
    assert await shadow("send", {"to": "you"}) == Admission(
        None,
        would_deny=(
            Denial("tight trial", "condition state.send.sent lte 1 does not hold (counter would be 2)"),
            Denial("on trial", "condition args.to eq 'me' does not hold"),
        ),
    )
    assert await store.value("counter:send:sent", "calendar", 86400, NOW) == 1


class BrokenStore(MemoryStore):
    async def value(self, key: str, kind: WindowKind, window_seconds: int, now: float) -> float:
        raise StateError("store down")


async def test_shadow_decide_records_a_store_failure_as_enforcement_would_decide_it() -> None:
    eng = engine(ENFORCED)
    call = ToolCall("limited", {})
    assert await shadow_decide(eng, call, BrokenStore(), NOW, {}) == Admission(
        None, would_deny=(STATE_DENIAL,)
    )
    assert await shadow_decide(eng, call, BrokenStore(), NOW, {}, fail_open=True) == Admission(
        None, "state-fail-open"
    )


def call(message_id: int, name: str, arguments: dict[str, Any] | None = None) -> bytes:
    params = {"name": name, "arguments": arguments or {}}
    return json.dumps({"jsonrpc": "2.0", "id": message_id, "method": "tools/call", "params": params}).encode()


def shadow_router(policy: str, store: MemoryStore, audit: Any) -> tuple[Router, list[bytes], list[bytes]]:
    to_client: list[bytes] = []
    to_upstream: list[bytes] = []

    async def client(data: bytes) -> None:
        to_client.append(data)

    async def upstream(data: bytes) -> None:
        to_upstream.append(data)

    router = Router(
        engine(policy),
        store,
        send_client=client,
        send_upstream=upstream,
        audit=audit,
        clock=lambda: NOW,
        shadow=True,
    )
    return router, to_client, to_upstream


async def test_the_shadow_router_forwards_every_call_and_counts_nothing() -> None:
    store = MemoryStore()
    audit = Audit()
    router, to_client, to_upstream = shadow_router(ENFORCED, store, audit)
    calls = [("secret", {}), ("blocked", {}), ("limited", {}), ("limited", {}), ("send", {"to": "x"})]
    for i, (name, args) in enumerate(calls, 1):
        await router.from_client(call(i, name, args))
    assert [json.loads(m)["params"]["name"] for m in to_upstream] == [name for name, _ in calls]
    assert to_client == []
    assert audit.calls == [(name, "allow", "") for name, _ in calls]
    assert audit.would_deny == [("secret", ["hide"]), ("blocked", ["never"]), ("send", ["on trial"])]
    for i in range(1, 6):
        await router.from_upstream(
            json.dumps({"jsonrpc": "2.0", "id": i, "result": {"content": []}}).encode()
        )
    assert len(to_client) == 5 and router.pending_count == 0
    assert await store.value("rate:limited:one a minute", "sliding", 60, NOW) == 0
    assert await store.value("counter:send:sent", "calendar", 86400, NOW) == 0


async def test_the_shadow_router_lists_hidden_tools() -> None:
    router, to_client, _ = shadow_router(ENFORCED, MemoryStore(), None)
    await router.from_client(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode())
    listing = {"tools": [{"name": "secret", "inputSchema": {}}, {"name": "limited", "inputSchema": {}}]}
    await router.from_upstream(json.dumps({"jsonrpc": "2.0", "id": 1, "result": listing}).encode())
    [answer] = [json.loads(m) for m in to_client]
    assert [t["name"] for t in answer["result"]["tools"]] == ["secret", "limited"]


async def test_an_enforcing_router_records_shadow_rules_in_the_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    audit = AuditLog(path, "i")
    router, _, to_upstream = shadow_router(ENFORCED, MemoryStore(), audit)
    router.shadow = False
    await router.from_client(call(1, "send", {"to": "not me", "secret": "sk_live_SECRET"}))
    await router.from_client(call(2, "blocked"))
    audit.close()
    assert len(to_upstream) == 1
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["tool"], e["decision"], e.get("would_deny")) for e in events] == [
        ("send", "allow", [{"rule": "on trial", "reason": "condition args.to eq 'me' does not hold"}]),
        ("blocked", "deny", None),
    ]
    assert "sk_live_SECRET" not in path.read_text() and "not me" not in path.read_text()
