"""The router and `SessionApprovals` with in-memory peers: holding, asking, deciding, timing out."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from intercept.approvals.coordinator import ApprovalService
from intercept.approvals.store import MemoryApprovals
from intercept.engine import Denial, Engine
from intercept.policy import load_policy_text
from intercept.proxy import Router
from intercept.state.memory import MemoryStore
from tests.unit.intercept.test_proxy import call, denial_text

POLICY = """
tools:
  pay:
    rules:
      - name: big payments need a human
        action: require_approval
        conditions: [{path: args.amount, op: gt, value: 100}]
        approval: {timeout: 1}
      - name: one payment a minute
        rate_limit: {max: 1, window: 60}
"""
RULE = "big payments need a human"
ELICITING = {"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}}, "clientInfo": {}}


class Audit:
    def __init__(self) -> None:
        self.events: list[str] = []

    def tool_call(
        self,
        tool: str,
        decision: str,
        rule: str,
        reason: str,
        arguments: Mapping[str, Any],
        would_deny: Sequence[Denial] = (),
    ) -> None:
        self.events.append(f"call:{decision}")

    def pin_drift(self, fields: Mapping[str, Any]) -> None:
        self.events.append(f"drift:{fields['action']}")

    def approval(
        self,
        what: str,
        approval_id: str,
        tool: str,
        rule: str,
        arguments: Mapping[str, Any],
        detail: str = "",
    ) -> None:
        self.events.append(what)


class Harness:
    def __init__(self, approvals: MemoryApprovals | None = None) -> None:
        self.store = MemoryStore()
        self.client_got: list[Any] = []
        self.upstream_got: list[Any] = []
        self.audit = Audit()
        self.approvals = approvals or MemoryApprovals()
        self.service = ApprovalService(lambda: self.approvals, audit=self.audit, poll_seconds=0.01)
        self.router = Router(
            Engine(load_policy_text(POLICY)),
            self.store,
            send_client=self._to_client,
            send_upstream=self._to_upstream,
            audit=self.audit,
            approvals=self.service,
        )

    async def _to_client(self, data: bytes) -> None:
        self.client_got.append(json.loads(data))

    async def _to_upstream(self, data: bytes) -> None:
        self.upstream_got.append(json.loads(data))

    async def client(self, message: Any) -> None:
        await self.router.from_client(json.dumps(message).encode())

    async def initialize(self, params: Any = ELICITING) -> None:
        await self.client({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})

    async def until(self, predicate: Any) -> None:
        for _ in range(500):
            if predicate():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("condition not reached")

    async def count(self) -> float:
        return await self.store.value("rate:pay:one payment a minute", "sliding", 60, time.time())


def elicitations(h: Harness) -> list[Any]:
    return [m for m in h.client_got if m.get("method") == "elicitation/create"]


async def test_accepted_elicitation_forwards_the_call_and_reserves_only_then() -> None:
    h = Harness()
    await h.initialize()
    await h.client(call(1, "pay", {"amount": 500}))
    await h.until(lambda: elicitations(h))
    assert [m.get("method") for m in h.upstream_got] == ["initialize"]
    assert await h.count() == 0  # nothing reserved while held
    await h.client({"jsonrpc": "2.0", "id": 2, "method": "ping"})  # the session goes on meanwhile
    assert h.upstream_got[-1]["method"] == "ping"
    question = elicitations(h)[0]
    answer = {"action": "accept", "content": {"approve": True}}
    await h.client({"jsonrpc": "2.0", "id": question["id"], "result": answer})
    await h.until(lambda: h.upstream_got[-1].get("id") == 1)
    assert h.upstream_got[-1]["params"]["arguments"] == {"amount": 500}
    assert all(m.get("id") != question["id"] for m in h.upstream_got)  # the answer is the proxy's
    assert await h.count() == 1
    assert h.audit.events == ["requested", "granted", "call:allow"]


async def test_a_call_its_conditions_do_not_match_is_not_held() -> None:
    h = Harness()
    await h.initialize()
    await h.client(call(1, "pay", {"amount": 5}))
    assert h.upstream_got[-1]["id"] == 1 and not elicitations(h)


async def test_a_call_other_rules_refuse_is_denied_without_asking() -> None:
    h = Harness()
    await h.initialize()
    await h.client(call(1, "pay", {"amount": 5}))  # uses the one payment of the minute
    await h.client(call(2, "pay", {"amount": 500}))
    assert "rate limit" in denial_text(h.client_got[-1]) and not elicitations(h)


async def test_declined_elicitation_denies_and_forwards_nothing() -> None:
    h = Harness()
    await h.initialize()
    await h.client(call(1, "pay", {"amount": 500}))
    await h.until(lambda: elicitations(h))
    await h.client({"jsonrpc": "2.0", "id": elicitations(h)[0]["id"], "result": {"action": "decline"}})
    await h.until(lambda: h.client_got[-1].get("id") == 1)
    assert denial_text(h.client_got[-1]) == f"[INTERCEPT POLICY DENIED] approval denied (rule: {RULE})"
    assert [m.get("method") for m in h.upstream_got] == ["initialize"]


async def test_timeout_denies_withdraws_the_question_and_audits_expiry() -> None:
    h = Harness()
    await h.initialize()
    await h.client(call(1, "pay", {"amount": 500}))
    await h.until(lambda: h.client_got and h.client_got[-1].get("id") == 1)
    assert denial_text(h.client_got[-1]) == f"[INTERCEPT POLICY DENIED] approval timed out (rule: {RULE})"
    withdrawn = [m for m in h.client_got if m.get("method") == "notifications/cancelled"]
    assert withdrawn[0]["params"]["requestId"] == elicitations(h)[0]["id"]
    assert h.audit.events == ["requested", "expired", "call:deny"]


async def test_a_held_id_cannot_be_reused_and_cancelling_it_drops_it() -> None:
    h = Harness()
    await h.initialize()
    await h.client(call(1, "pay", {"amount": 500}))
    await h.client(call(1, "pay", {"amount": 5}))
    assert h.client_got[-1]["error"]["message"] == "request id is already in use by a pending request"
    await h.client({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}})
    assert [m.get("method") for m in h.upstream_got] == ["initialize"]  # the cancellation is not relayed
    await h.client(call(1, "pay", {"amount": 5}))  # the id is free again
    assert h.upstream_got[-1]["id"] == 1


async def test_a_policy_reloaded_while_held_voids_the_approval() -> None:
    h = Harness()
    await h.initialize()
    await h.client(call(1, "pay", {"amount": 500}))
    await h.until(lambda: elicitations(h))
    h.router.engine = Engine(load_policy_text(POLICY.replace("timeout: 1", "timeout: 2")))
    answer = {"action": "accept", "content": {"approve": True}}
    await h.client({"jsonrpc": "2.0", "id": elicitations(h)[0]["id"], "result": answer})
    await h.until(lambda: h.client_got[-1].get("id") == 1)
    assert "the policy changed while the call awaited approval" in denial_text(h.client_got[-1])


async def test_without_elicitation_and_a_private_store_no_one_can_be_asked() -> None:
    h = Harness()
    await h.initialize({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {}})
    await h.client(call(1, "pay", {"amount": 500}))
    await h.until(lambda: h.client_got and h.client_got[-1].get("id") == 1)
    assert "no one can be asked" in denial_text(h.client_got[-1])


async def test_a_shared_store_grant_runs_the_call() -> None:
    approvals = MemoryApprovals()
    approvals.shared = True  # stands in for SQLite/Redis reached by another process
    h = Harness(approvals)
    await h.initialize({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {}})
    await h.client(call(1, "pay", {"amount": 500}))
    await h.until(lambda: approvals._items)
    (approval_id,) = approvals._items
    assert await approvals.decide(approval_id, "granted", time.time()) == "granted"
    await h.until(lambda: h.upstream_got[-1].get("id") == 1)
    assert (await approvals.get(approval_id)) is not None
    assert (await approvals.get(approval_id)).status == "used"  # type: ignore[union-attr]


async def test_the_session_ending_answers_held_calls_with_an_error() -> None:
    h = Harness()
    await h.initialize()
    await h.client(call(1, "pay", {"amount": 500}))
    await h.router.upstream_closed("the MCP server exited")
    errors = [m for m in h.client_got if m.get("id") == 1]
    assert errors[0]["error"]["message"] == "the MCP server exited before this request was answered"
    assert [m.get("method") for m in h.upstream_got] == ["initialize"]


@pytest.mark.parametrize(
    ("capability", "asks"), [({}, True), ({"form": {}}, True), ({"url": {}}, False), (None, False)]
)
async def test_only_form_elicitation_counts(capability: Any, asks: bool) -> None:
    h = Harness()
    caps = {} if capability is None else {"elicitation": capability}
    await h.initialize({"protocolVersion": "2025-11-25", "capabilities": caps, "clientInfo": {}})
    assert h.router.approvals.elicitation is asks
