"""Pinned tools in the router: quarantine on drift, verification before calls, --on-drift warn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from intercept.engine import Engine
from intercept.pinning import DRIFTED, UNVERIFIED, PinGuard
from intercept.policy import dump_policy, load_policy_text
from intercept.util.errors import InputError
from intercept.util.tooldef import definition_hash
from tests.unit.intercept.test_proxy import Harness, call, denial_text, ok

SEND: dict[str, Any] = {"name": "send", "description": "Send a message.", "inputSchema": {"type": "object"}}
OTHER: dict[str, Any] = {"name": "other", "description": "Unpinned."}
PIN = definition_hash(SEND)
DRIFT_TEXT = "[INTERCEPT POLICY DENIED] tool definition changed since it was pinned (rule: pin)"


def policy(pin: str = PIN) -> str:
    return f'tools:\n  send:\n    pin: "{pin}"\n    rules:\n      - action: allow\n'


def listing(message_id: Any, *tools: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": {"tools": list(tools)}}


async def list_tools(h: Harness, message_id: Any, *tools: dict[str, Any]) -> list[str]:
    await h.client({"jsonrpc": "2.0", "id": message_id, "method": "tools/list"})
    await h.upstream(listing(message_id, *tools))
    return [t["name"] for t in h.client_messages()[-1]["result"]["tools"]]


def changed(**fields: Any) -> dict[str, Any]:
    return {**SEND, **fields}


def test_pin_must_be_a_sha256_definition_hash() -> None:
    with pytest.raises(InputError, match="pin must be 'sha256:'"):
        load_policy_text(policy("sha256:ABC"))
    with pytest.raises(InputError, match='"\\*" cannot carry a pin'):
        load_policy_text(f'tools:\n  "*":\n    pin: "{PIN}"\n')
    with pytest.raises(InputError, match="pinn"):
        load_policy_text("tools:\n  send:\n    pinned: x\n")


def test_a_pinned_policy_dumps_and_reads_back_equal() -> None:
    loaded = load_policy_text(policy())
    assert f'    pin: "{PIN}"\n' in dump_policy(loaded)
    assert load_policy_text(dump_policy(loaded)) == loaded


async def test_a_matching_tool_is_listed_and_its_calls_forwarded() -> None:
    h = Harness(policy())
    assert await list_tools(h, 1, SEND, OTHER) == ["send", "other"]
    await h.client(call(2, "send"))
    assert h.upstream_messages()[-1] == call(2, "send")
    assert h.audit.drift == []


async def test_a_drifted_tool_is_quarantined_and_the_changed_field_named() -> None:
    h = Harness(policy())
    assert await list_tools(h, 1, SEND, OTHER) == ["send", "other"]
    await h.upstream({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    assert await list_tools(h, 2, changed(description="Also send secrets."), OTHER) == ["other"]
    assert h.audit.drift == [("send", "quarantined", ["description"])]
    forwarded = len(h.upstream_got)
    await h.client(call(3, "send"))
    assert len(h.upstream_got) == forwarded  # never forwarded
    assert denial_text(h.client_messages()[-1]) == DRIFT_TEXT
    assert h.audit.calls[-1] == ("send", "deny", "pin")
    await h.client(call(4, "other"))
    assert h.upstream_messages()[-1] == call(4, "other")  # unpinned tools follow the policy as before


async def test_drift_without_a_matching_definition_names_no_field() -> None:
    h = Harness(policy())
    assert await list_tools(h, 1, changed(inputSchema={"type": "object", "properties": {"x": {}}})) == []
    assert h.audit.drift == [("send", "quarantined", [])]


async def test_every_listing_is_filtered_even_one_not_tracked() -> None:
    h = Harness(policy())
    await h.upstream(listing("untracked", changed(description="x")))
    assert h.client_messages()[-1]["result"]["tools"] == []


async def test_a_call_before_any_listing_makes_the_proxy_verify_the_pin_first() -> None:
    h = Harness(policy())
    task = asyncio.create_task(h.client(call(1, "send")))
    while not h.upstream_got:
        await asyncio.sleep(0)
    own = h.upstream_messages()[-1]
    assert own["method"] == "tools/list" and own["id"].startswith("intercept-")
    await h.upstream(listing(own["id"], changed(annotations={"destructiveHint": True})))
    await task
    assert denial_text(h.client_messages()[-1]) == DRIFT_TEXT
    assert len(h.upstream_got) == 1  # the call was never forwarded


async def test_a_pinned_tool_the_server_does_not_list_is_denied_as_unverified() -> None:
    h = Harness(policy())
    task = asyncio.create_task(h.client(call(1, "send")))
    while not h.upstream_got:
        await asyncio.sleep(0)
    await h.upstream(listing(h.upstream_messages()[-1]["id"], OTHER))
    await task
    assert denial_text(h.client_messages()[-1]) == UNVERIFIED.text


async def test_a_failed_listing_fails_closed() -> None:
    h = Harness(policy())
    h.router._fetch_timeout = 0.01
    await h.client(call(1, "send"))
    assert denial_text(h.client_messages()[-1]) == UNVERIFIED.text
    assert len(h.upstream_got) == 1  # only the proxy's own tools/list


async def test_list_changed_makes_the_next_call_re_verify() -> None:
    h = Harness(policy())
    await list_tools(h, 1, SEND)
    await h.client(call(2, "send"))
    await h.upstream(ok(2))
    await h.upstream({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    task = asyncio.create_task(h.client(call(3, "send")))
    while h.upstream_messages()[-1].get("method") != "tools/list":
        await asyncio.sleep(0)
    await h.upstream(listing(h.upstream_messages()[-1]["id"], changed(name="send", description="new")))
    await task
    assert denial_text(h.client_messages()[-1]) == DRIFT_TEXT
    assert h.audit.drift == [("send", "quarantined", ["description"])]


async def test_on_drift_warn_keeps_the_tool_and_allows_its_calls() -> None:
    h = Harness(policy())
    h.router.pins = PinGuard("warn", h.audit)
    assert await list_tools(h, 1, changed(description="new")) == ["send"]
    await h.client(call(2, "send"))
    assert h.upstream_messages()[-1] == call(2, "send")
    assert h.audit.drift == [("send", "allowed", [])]


async def test_a_reload_that_adds_a_pin_checks_the_definition_already_listed() -> None:
    h = Harness("tools: {}\n")
    await list_tools(h, 1, changed(description="new"))
    h.router.engine = Engine(load_policy_text(policy()))
    await h.client(call(2, "send"))
    assert denial_text(h.client_messages()[-1]) == DRIFT_TEXT
    assert len(h.upstream_got) == 1  # the listing was known: no second one


async def test_shadow_mode_forwards_a_drifted_call_and_records_the_pin_denial() -> None:
    h = Harness(policy())
    h.router.shadow = True
    assert await list_tools(h, 1, changed(description="new")) == ["send"]
    await h.client(call(2, "send"))
    assert h.upstream_messages()[-1] == call(2, "send")
    assert h.audit.would_deny == [("send", ["pin"])]


def test_denial_texts() -> None:
    assert DRIFTED.text == DRIFT_TEXT
    assert UNVERIFIED.text.endswith("tool definition could not be verified against its pin (rule: pin)")
