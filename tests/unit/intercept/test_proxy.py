"""The router with in-memory peers: strictness, batches, hide filtering, counting and failure paths."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from intercept.audit import AuditLog
from intercept.engine import Engine
from intercept.policy import load_policy_text
from intercept.proxy import Router
from intercept.state.memory import MemoryStore
from intercept.transport.base import FRAME_EDGE_BYTES, FrameTooLarge

NOW = 1_764_115_200.0

POLICY = """
hide: [secret]
tools:
  limited:
    rules:
      - name: two per minute
        rate_limit: {max: 2, window: 60}
  checked:
    rules:
      - validate: {required_args: true}
  blocked:
    rules:
      - action: deny
        reason: never
"""


class Audit:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def tool_call(
        self, tool: str, decision: str, rule: str, reason: str, arguments: Mapping[str, Any]
    ) -> None:
        self.calls.append((tool, decision, rule))


class Harness:
    def __init__(self, policy: str = POLICY) -> None:
        self.store = MemoryStore()
        self.client_got: list[bytes] = []
        self.upstream_got: list[bytes] = []
        self.audit = Audit()
        self.router = Router(
            Engine(load_policy_text(policy)),
            self.store,
            send_client=self._to_client,
            send_upstream=self._to_upstream,
            audit=self.audit,
            clock=lambda: NOW,
            schema_fetch_timeout=2.0,
        )

    async def _to_client(self, data: bytes) -> None:
        self.client_got.append(data)

    async def _to_upstream(self, data: bytes) -> None:
        self.upstream_got.append(data)

    async def client(self, message: Any) -> None:
        await self.router.from_client(message if isinstance(message, bytes) else json.dumps(message).encode())

    async def upstream(self, message: Any) -> None:
        await self.router.from_upstream(
            message if isinstance(message, bytes) else json.dumps(message).encode()
        )

    def client_messages(self) -> list[Any]:
        return [json.loads(m) for m in self.client_got]

    def upstream_messages(self) -> list[Any]:
        return [json.loads(m) for m in self.upstream_got]

    async def rate_count(self) -> float:
        return await self.store.value("rate:limited:two per minute", "sliding", 60, NOW)


def call(message_id: Any, name: Any, arguments: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": message_id, "method": "tools/call", "params": params}


def ok(message_id: Any, text: str = "done", is_error: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}]}
    if is_error:
        result["isError"] = True
    return {"jsonrpc": "2.0", "id": message_id, "result": result}


def denial_text(message: Any) -> str:
    assert message["result"]["isError"] is True
    text = message["result"]["content"][0]["text"]
    assert isinstance(text, str)
    return text


async def test_allowed_call_is_forwarded_as_the_re_serialised_evaluated_object() -> None:
    h = Harness()
    await h.client(
        b'{ "jsonrpc" : "2.0", "id" : 7, "method" : "tools/call",'
        b' "params" : {"name": "free", "arguments": {"x": "\\u00e9"}} }'
    )
    assert h.upstream_got == [
        '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"free","arguments":{"x":"é"}}}'.encode()
    ]
    assert h.client_got == []
    await h.upstream(ok(7))
    assert h.client_messages() == [ok(7)]
    assert h.audit.calls == [("free", "allow", "")]


async def test_denied_call_is_answered_by_the_proxy_and_never_forwarded() -> None:
    h = Harness()
    await h.client(call(1, "blocked"))
    assert h.upstream_got == []
    assert (
        denial_text(h.client_messages()[0])
        == "[INTERCEPT POLICY DENIED] never (rule: tools.blocked.rules[0])"
    )
    assert h.client_messages()[0]["id"] == 1
    assert h.audit.calls == [("blocked", "deny", "tools.blocked.rules[0]")]


async def test_hidden_tool_cannot_be_called() -> None:
    h = Harness()
    await h.client(call(1, "secret"))
    assert h.upstream_got == []
    assert "tool is hidden by policy (rule: hide)" in denial_text(h.client_messages()[0])


@pytest.mark.parametrize(
    "raw",
    [
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"free","name":"blocked"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fr\xffee"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"free\\ud800"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["free"]}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["free"]}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call"}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"free","arguments":[1]}}',
        b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"free"}}',
        b'{"jsonrpc":"2.0","id":true,"method":"tools/call","params":{"name":"free"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"free"},"result":{}}',
        b'"tools/call"',
    ],
)
async def test_malformed_messages_get_an_error_and_are_never_forwarded(raw: bytes) -> None:
    h = Harness()
    await h.client(raw)
    assert h.upstream_got == []
    (reply,) = h.client_messages()
    assert "error" in reply and reply["error"]["code"] in (-32700, -32600, -32602)


async def test_batch_is_checked_element_by_element() -> None:
    h = Harness()
    batch = [
        call(1, "free"),
        call(2, "blocked"),
        {"jsonrpc": "2.0", "method": "notifications/x"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": 5}},
        call(4, "secret"),
    ]
    await h.client(batch)
    (forwarded,) = h.upstream_messages()
    assert forwarded == [call(1, "free"), {"jsonrpc": "2.0", "method": "notifications/x"}]
    (answers,) = h.client_messages()
    assert [a["id"] for a in answers] == [2, 3, 4]
    assert "never" in denial_text(answers[0]) and answers[1]["error"]["code"] == -32602
    assert "hidden" in denial_text(answers[2])


async def test_batch_of_only_denied_calls_sends_nothing_upstream() -> None:
    h = Harness()
    await h.client([call(1, "blocked"), call(2, "secret")])
    assert h.upstream_got == []
    await h.client([])
    assert h.client_messages()[-1]["error"]["code"] == -32600


async def test_tools_list_hides_tools_on_every_page_and_keeps_other_fields() -> None:
    h = Harness()
    for page, cursor in ((1, "next-2"), (2, None)):
        await h.client({"jsonrpc": "2.0", "id": f"list{page}", "method": "tools/list", "params": {}})
        result: dict[str, Any] = {
            "tools": [
                {"name": "free", "inputSchema": {"type": "object"}},
                {"name": "secret"},
                {"name": "Secret"},
                {"name": 5},
                "junk",
            ],
            "_meta": {"page": page},
            "extra": True,
        }
        if cursor:
            result["nextCursor"] = cursor
        await h.upstream({"jsonrpc": "2.0", "id": f"list{page}", "result": result})
        reply = h.client_messages()[-1]
        assert [t["name"] for t in reply["result"]["tools"]] == ["free", "Secret"]
        assert reply["result"]["_meta"] == {"page": page} and reply["result"]["extra"] is True
        assert reply["result"].get("nextCursor") == cursor


async def test_malformed_tools_list_result_becomes_an_error() -> None:
    h = Harness()
    await h.client({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    await h.upstream({"jsonrpc": "2.0", "id": 1, "result": {"tools": {"secret": {}}}})
    assert h.client_messages()[0]["error"]["code"] == -32000


async def test_rate_limit_denies_the_third_call_and_success_commits() -> None:
    h = Harness()
    for i in (1, 2):
        await h.client(call(i, "limited"))
        await h.upstream(ok(i))
    await h.client(call(3, "limited"))
    assert "rate limit of 2 calls per 60 s reached (rule: two per minute)" in denial_text(
        h.client_messages()[-1]
    )
    assert len(h.upstream_got) == 2 and await h.rate_count() == 2


@pytest.mark.parametrize(
    "failure",
    [
        ok(1, "boom", is_error=True),
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "internal"}},
    ],
)
async def test_failed_calls_consume_no_quota(failure: dict[str, Any]) -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    assert await h.rate_count() == 1
    await h.upstream(failure)
    assert await h.rate_count() == 0
    assert h.client_messages() == [failure]


async def test_a_cancelled_call_stays_counted_until_the_server_says_it_failed() -> None:
    h = Harness()
    await h.client(call("c1", "limited"))
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "c1"}}
    await h.client(cancel)
    assert h.upstream_messages()[-1] == cancel
    assert await h.rate_count() == 1  # the server may finish it without answering
    await h.upstream({"jsonrpc": "2.0", "id": "c1", "error": {"code": -32800, "message": "cancelled"}})
    assert await h.rate_count() == 0


async def test_call_and_cancel_cannot_run_a_limited_tool_past_its_limit() -> None:
    h = Harness()
    for number in range(2):
        await h.client(call(f"c{number}", "limited"))
        cancel = {"requestId": f"c{number}"}
        await h.client({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel})
    await h.client(call("c0", "limited"))  # the limit (2) is spent, even reusing a cancelled id
    assert "rate limit of 2 calls per 60 s reached" in denial_text(h.client_messages()[-1])
    await h.router.upstream_closed()  # no answer ever came: both stay counted
    assert await h.rate_count() == 2


async def test_upstream_death_errors_every_pending_request_and_rolls_back() -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    await h.client({"jsonrpc": "2.0", "id": 2, "method": "resources/list"})
    await h.router.upstream_closed()
    errors = {m["id"]: m["error"]["code"] for m in h.client_messages()}
    assert errors == {1: -32000, 2: -32000}
    assert await h.rate_count() == 0
    await h.client(call(3, "free"))
    assert h.client_messages()[-1]["error"]["code"] == -32000
    assert len(h.upstream_got) == 2


async def test_duplicate_pending_id_is_rejected() -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    await h.client(call(1, "free"))
    assert len(h.upstream_got) == 1
    assert h.client_messages()[0]["error"]["code"] == -32600
    assert await h.rate_count() == 1


async def test_client_cannot_use_the_proxys_own_id_space() -> None:
    h = Harness()
    await h.client({"jsonrpc": "2.0", "id": h.router._own_prefix + "1", "method": "ping"})
    assert h.upstream_got == [] and h.client_messages()[0]["error"]["code"] == -32600


async def test_required_args_before_any_listing_makes_the_proxy_list_tools_itself() -> None:
    h = Harness()
    task = asyncio.create_task(h.client(call(1, "checked", {"a": 1})))
    for page, cursor in ((1, "p2"), (2, None)):
        while len(h.upstream_got) < page:
            await asyncio.sleep(0)
        own = h.upstream_messages()[-1]
        assert own["method"] == "tools/list" and isinstance(own["id"], str)
        assert own["id"].startswith("intercept-") and own["params"] == ({"cursor": "p2"} if page == 2 else {})
        tools = (
            [{"name": "checked", "inputSchema": {"type": "object", "required": ["a", "b"]}}]
            if page == 2
            else []
        )
        result: dict[str, Any] = {"tools": tools}
        if cursor:
            result["nextCursor"] = cursor
        await h.upstream({"jsonrpc": "2.0", "id": own["id"], "result": result})
    await task
    assert "missing required argument: b" in denial_text(h.client_messages()[-1])
    assert len(h.client_got) == 1  # the proxy's own listings were never relayed
    await h.client(call(2, "checked", {"a": 1, "b": 2}))
    assert h.upstream_messages()[-1] == call(2, "checked", {"a": 1, "b": 2})
    assert len(h.upstream_got) == 3  # no second listing


async def test_list_changed_forgets_learned_schemas() -> None:
    h = Harness()
    await h.client({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    await h.upstream(
        {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "checked", "inputSchema": {}}]}}
    )
    assert "checked" in h.router.schemas
    await h.upstream({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})
    assert h.router.schemas == {}
    assert h.client_messages()[-1] == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}


async def test_server_requests_and_client_responses_pass_through() -> None:
    h = Harness()
    sampling = {"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {"messages": []}}
    await h.upstream(sampling)
    assert h.client_messages() == [sampling]
    answer = {
        "jsonrpc": "2.0",
        "id": 0,
        "result": {"role": "assistant", "content": {"type": "text", "text": "hi"}},
    }
    await h.client(answer)
    assert h.upstream_messages() == [answer]


async def test_hostile_upstream_messages_are_dropped_or_turned_into_errors() -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    await h.upstream(b'{"jsonrpc":"2.0","id":1,"result":{"content":[]},"result":{"isError":true}}')
    assert h.client_got == []  # unreadable: dropped
    await h.upstream({"jsonrpc": "1.0", "id": 1, "result": {}})
    [error] = h.client_messages()
    assert error["error"]["code"] == -32000 and "the tool may have run" in error["error"]["message"]
    assert await h.rate_count() == 1  # the server reported no failure the proxy could read: it counts


async def test_upstream_batch_responses_are_settled_and_filtered() -> None:
    h = Harness()
    await h.client([call(1, "limited"), {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}])
    await h.upstream(
        [ok(1), {"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "secret"}, {"name": "a"}]}}]
    )
    (batch,) = h.client_messages()
    assert batch[0] == ok(1) and [t["name"] for t in batch[1]["result"]["tools"]] == ["a"]
    assert await h.rate_count() == 1


async def test_reload_swaps_the_engine_and_keeps_counters() -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    await h.upstream(ok(1))
    h.router.engine = Engine(load_policy_text(POLICY.replace("hide: [secret]", "hide: []")))
    await h.client(call(2, "limited"))
    await h.client(call(3, "limited"))
    assert "rate limit" in denial_text(h.client_messages()[-1])
    await h.client(call(4, "secret"))
    assert h.upstream_messages()[-1] == call(4, "secret")


async def test_a_cancelled_call_the_server_completes_anyway_is_counted() -> None:
    h = Harness()
    await h.client(call("c1", "limited"))
    await h.client({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "c1"}})
    assert await h.rate_count() == 1
    await h.upstream(ok("c1"))  # the tool ran after all: call-and-cancel must not dodge the limit
    assert await h.rate_count() == 1
    await h.upstream(ok("c1"))  # counted once
    assert await h.rate_count() == 1
    await h.client(call("c2", "limited"))
    await h.client({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "c2"}})
    await h.upstream(ok("c2", is_error=True))  # a failed late answer costs nothing
    assert await h.rate_count() == 1


@pytest.mark.parametrize(
    "method",
    [
        "Tools/Call",
        "tools/call ",
        "TOOLS/CALL",
        "tool\u017f/call",
        "\ufefftools/call",
        "tools/call\x00",
        "tools/\u200bcall",
        "Tools/List",
        "tools/list\ufeff",
        "tool\u017f/list",
    ],
)
async def test_look_alike_policed_methods_are_refused(method: str) -> None:
    h = Harness()
    await h.client({"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": "secret"}})
    await h.client({"jsonrpc": "2.0", "method": method, "params": {"name": "secret"}})
    await h.client(
        [{"jsonrpc": "2.0", "id": 2, "method": method}, {"jsonrpc": "2.0", "id": 3, "method": "ping"}]
    )
    assert h.upstream_got == [b'[{"jsonrpc":"2.0","id":3,"method":"ping"}]']
    answers = h.client_messages()
    assert [answers[0]["error"]["code"], answers[1]["error"]["code"]] == [-32601, -32601]
    assert [m["error"]["code"] for m in answers[2]] == [-32601]
    for answer in (answers[0], answers[1], answers[2][0]):
        assert answer["error"]["message"].startswith("method must be exactly 'tools/")
        assert method not in answer["error"]["message"]


def dropped(message: Any, limit: int = 1024) -> FrameTooLarge:
    """What a transport reports for `message` when it exceeds `limit` bytes."""
    raw = json.dumps(message, separators=(",", ":")).encode()
    return FrameTooLarge(len(raw), limit, raw[:FRAME_EDGE_BYTES], raw[-FRAME_EDGE_BYTES:])


async def test_an_oversized_client_request_is_answered_with_its_own_id() -> None:
    h = Harness()
    await h.router.client_frame_too_large(dropped(call("big-1", "limited", {"blob": "x" * 20_000})))
    [answer] = h.client_messages()
    assert answer["id"] == "big-1" and answer["error"]["code"] == -32600
    assert "1024-byte limit" in answer["error"]["message"]
    assert h.upstream_got == [] and await h.rate_count() == 0


async def test_an_oversized_answer_fails_its_call_which_stays_counted() -> None:
    h = Harness()
    await h.client(call(9, "limited"))
    huge = {"result": {"content": [{"type": "text", "text": "y" * 20_000}]}, "jsonrpc": "2.0", "id": 9}
    await h.router.upstream_frame_too_large(dropped(huge))
    [answer] = h.client_messages()
    assert answer["id"] == 9 and answer["error"]["code"] == -32000
    assert "may have run" in answer["error"]["message"]
    assert h.router.pending_count == 0
    assert await h.rate_count() == 1  # its outcome is unknown: it counts (fail closed)


async def test_an_oversized_message_without_a_readable_id_is_only_logged() -> None:
    h = Harness()
    await h.client(call(9, "limited"))
    await h.router.upstream_frame_too_large(FrameTooLarge(5000, 1024, b'{"result":{"x":"', b'"}}'))
    assert h.client_got == [] and h.router.pending_count == 1


async def test_a_schema_denial_leaves_no_argument_value_in_the_audit_log(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "events.jsonl")
    router = Router(
        Engine(load_policy_text("tools:\n  pay:\n    rules:\n      - validate: {schema: true}\n")),
        MemoryStore(),
        send_client=_discard,
        send_upstream=_discard,
        audit=audit,
        clock=lambda: NOW,
    )
    listing = {
        "tools": [
            {
                "name": "pay",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "amount": {"type": "integer"},
                        "card": {"type": "object", "additionalProperties": False},
                    },
                },
            }
        ]
    }
    await router.from_client(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode())
    await router.from_upstream(json.dumps({"jsonrpc": "2.0", "id": 1, "result": listing}).encode())
    for arguments in ({"amount": "sk_live_SECRET"}, {"amount": 1, "card": {"sk_live_SECRET": "4242"}}):
        params = {"name": "pay", "arguments": arguments}
        request = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}
        await router.from_client(json.dumps(request).encode())
    audit.close()
    text = (tmp_path / "events.jsonl").read_text()
    assert text.count('"decision":"deny"') == 2
    assert "SECRET" not in text and "4242" not in text


async def _discard(data: bytes) -> None:
    return None
