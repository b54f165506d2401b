"""The router with in-memory peers: strictness, batches, hide filtering, counting and failure paths."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from intercept.audit import AuditLog
from intercept.engine import Denial, Engine
from intercept.policy import load_policy_text
from intercept.proxy import Router
from intercept.relay import relay
from intercept.state.memory import MemoryStore
from intercept.transport.base import (
    FRAME_EDGE_BYTES,
    FrameTooLarge,
    Handler,
    ProxyEndedChannel,
    PumpableChannel,
    TooLargeHandler,
)
from tests.unit.intercept.transport.http.test_shared_child import FakeChild

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
        self.would_deny: list[tuple[str, list[str]]] = []
        self.drift: list[tuple[str, str, list[str]]] = []

    def tool_call(
        self,
        tool: str,
        decision: str,
        rule: str,
        reason: str,
        arguments: Mapping[str, Any],
        would_deny: Sequence[Denial] = (),
    ) -> None:
        self.calls.append((tool, decision, rule))
        if would_deny:
            self.would_deny.append((tool, [d.rule for d in would_deny]))

    def pin_drift(self, fields: Mapping[str, Any]) -> None:
        self.drift.append((fields["tool"], fields["action"], list(fields["changed"])))


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


async def test_a_result_the_server_marks_is_error_gives_the_quota_back() -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    assert await h.rate_count() == 1
    await h.upstream(ok(1, "boom", is_error=True))
    assert await h.rate_count() == 0
    assert h.client_messages() == [ok(1, "boom", is_error=True)]


def rpc_error(message_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": message}}


# What servers answer a call they did not finish: a handler's crash, the Python SDK's answer to
# every request in flight when its input closes (2.x) or to a cancelled request (1.x), a
# transport's report that the upstream could not be reached. None says the tool did not run.
JSON_RPC_ERRORS = [
    rpc_error(1, -32603, "internal"),
    rpc_error(1, -32000, "Connection closed"),
    rpc_error(1, 0, "Request cancelled"),
    rpc_error(1, -32800, "cancelled"),
    rpc_error(1, -32000, "upstream http://127.0.0.1:9/mcp unreachable: ClientConnectorError"),
]


@pytest.mark.parametrize("error", JSON_RPC_ERRORS)
async def test_a_json_rpc_error_leaves_a_forwarded_call_counted(error: dict[str, Any]) -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    await h.upstream(error)
    assert h.client_messages() == [error]
    assert await h.rate_count() == 1
    await h.client(call(2, "limited"))
    await h.upstream(error | {"id": 2})
    await h.client(call(3, "limited"))
    assert "rate limit of 2 calls per 60 s reached" in denial_text(h.client_messages()[-1])


@pytest.mark.parametrize("error", JSON_RPC_ERRORS)
async def test_a_cancelled_call_stays_counted_whatever_error_answers_it(error: dict[str, Any]) -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    await h.client(cancel)
    assert h.upstream_messages()[-1] == cancel
    assert await h.rate_count() == 1  # the server may finish it without answering
    await h.upstream(error)
    assert await h.rate_count() == 1


async def test_a_cancelled_call_the_server_says_failed_gives_the_quota_back() -> None:
    h = Harness()
    await h.client(call("c1", "limited"))
    await h.client({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "c1"}})
    await h.upstream(ok("c1", is_error=True))
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


async def test_upstream_death_errors_every_pending_request_and_counts_every_call() -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    await h.client(call(2, "limited"))
    await h.client({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}})
    await h.client({"jsonrpc": "2.0", "id": 3, "method": "resources/list"})
    await h.router.upstream_closed()
    errors = {m["id"]: m["error"] for m in h.client_messages()}
    assert sorted(errors) == [1, 3]  # a cancelled call expects no answer
    assert {e["code"] for e in errors.values()} == {-32000}
    assert (
        errors[1]["message"]
        == "the MCP server exited before this request was answered; the tool may have run"
    )
    assert await h.rate_count() == 2  # the tools may have run: a server crash gives nothing back
    await h.client(call(4, "free"))
    assert h.client_messages()[-1]["error"]["code"] == -32000
    assert len(h.upstream_got) == 4


async def test_pending_requests_are_told_why_the_upstream_went_away() -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    await h.router.upstream_closed("the client ended the session")
    [error] = h.client_messages()
    assert error["error"]["message"] == (
        "the client ended the session before this request was answered; the tool may have run"
    )
    assert await h.rate_count() == 1


async def test_every_pending_call_is_counted_even_when_the_client_cannot_be_told() -> None:
    async def gone(data: bytes) -> None:
        raise ConnectionError("client session is closed")

    h = Harness()
    for number in (1, 2):
        await h.client(call(number, "limited"))
    h.router._send_client = gone
    await h.router.upstream_closed()
    assert await h.rate_count() == 2


async def test_an_is_error_result_the_proxy_cannot_relay_stays_counted() -> None:
    h = Harness()
    await h.client(call(1, "limited"))
    await h.upstream(
        b'{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[{"type":"text","text":"\\ud800"}]}}'
    )
    [error] = h.client_messages()
    assert error["error"]["code"] == -32000 and "the tool may have run" in error["error"]["message"]
    assert await h.rate_count() == 1


async def test_a_late_failure_of_a_cancelled_call_cannot_refund_the_call_that_reused_its_id() -> None:
    h = Harness()
    await h.client(call("c", "limited"))
    await h.client({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "c"}})
    await h.client(call("c", "limited"))  # the id reused: the cancelled call is counted for good
    await h.upstream(ok("c", is_error=True))  # whose failure is this? It refunds neither
    await h.upstream(ok("c"))
    assert await h.rate_count() == 2


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


LISTING = {
    "tools": [{"name": "secret"}, {"name": "free", "inputSchema": {"type": "object"}}],
    "nextCursor": "n",
}


def listing_answer(message_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": LISTING}


def cancel(request_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}}


def listed_names(message: Any) -> list[str]:
    return [tool["name"] for tool in message["result"]["tools"]]


async def test_a_cancelled_tools_list_is_still_answered_filtered() -> None:
    h = Harness()
    await h.client({"jsonrpc": "2.0", "id": "l1", "method": "tools/list"})
    await h.client(cancel("l1"))
    await h.upstream(listing_answer("l1"))  # servers answer a cancelled listing anyway
    [answer] = h.client_messages()
    assert listed_names(answer) == ["free"] and answer["result"]["nextCursor"] == "n"
    assert h.router.pending_count == 0


async def test_a_tools_list_cancelled_in_its_own_batch_is_still_answered_filtered() -> None:
    h = Harness()
    await h.client([{"jsonrpc": "2.0", "id": 7, "method": "tools/list"}, cancel(7)])
    await h.upstream([listing_answer(7)])
    [[answer]] = h.client_messages()
    assert listed_names(answer) == ["free"]


async def test_a_listing_answering_an_untracked_id_is_filtered_and_teaches_no_schema() -> None:
    h = Harness()
    await h.upstream(listing_answer("never-asked"))
    await h.upstream({"jsonrpc": "2.0", "id": "never-asked", "result": {"tools": {"secret": {}}}})
    listed, malformed = h.client_messages()
    assert listed_names(listed) == ["free"]
    assert malformed["error"]["code"] == -32000 and "secret" not in json.dumps(malformed)
    assert h.router.schemas == {}


async def test_a_cancelled_calls_id_reused_for_tools_list_cannot_unfilter_the_listing() -> None:
    """The Python SDK 1.x answers the cancelled call with an error, which now looks like the
    answer to the listing; the real listing then arrives for an id no longer pending."""
    h = Harness()
    await h.client(call("r", "limited"))
    await h.client(cancel("r"))
    await h.client({"jsonrpc": "2.0", "id": "r", "method": "tools/list"})
    await h.upstream(rpc_error("r", 0, "Request cancelled"))
    await h.upstream(listing_answer("r"))
    error, listed = h.client_messages()
    assert error["error"]["code"] == 0 and listed_names(listed) == ["free"]
    assert await h.rate_count() == 1


async def test_a_listing_arriving_for_an_id_tracked_as_a_call_is_filtered_and_counts_the_call() -> None:
    h = Harness()
    await h.client(call(5, "limited"))
    await h.upstream([listing_answer(5)])
    [[answer]] = h.client_messages()
    assert listed_names(answer) == ["free"]
    assert await h.rate_count() == 1


UPSTREAM_CLOSED = "the proxy closed its session with the upstream MCP server"


class ProxyEndedChild(FakeChild, ProxyEndedChannel):
    """A fake upstream that only the proxy ends (as an HTTP upstream)."""

    closed_reason = UPSTREAM_CLOSED


@pytest.mark.parametrize(
    ("client_leaves", "closed_reason", "told"),
    [
        (True, None, "the client ended the session"),
        (True, UPSTREAM_CLOSED, "the client ended the session"),
        (False, None, "the MCP server exited"),
        (False, UPSTREAM_CLOSED, UPSTREAM_CLOSED),
    ],
)
async def test_relay_tells_the_client_why_its_call_went_unanswered_and_counts_it(
    client_leaves: bool, closed_reason: str | None, told: str
) -> None:
    h = Harness()
    client = FakeChild()
    upstream = FakeChild() if closed_reason is None else ProxyEndedChild()
    client.say(call(1, "limited"))
    if client_leaves:
        await client.close()
    h.router._send_client, h.router._send_upstream = client.send, upstream.send

    async def upstream_ends_once_the_call_is_forwarded() -> None:
        while not upstream.sent:
            await asyncio.sleep(0)
        if not client_leaves:
            await upstream.close()

    await asyncio.wait_for(
        asyncio.gather(relay(h.router, client, upstream), upstream_ends_once_the_call_is_forwarded()), 10
    )
    [error] = client.sent
    assert error["error"]["message"] == f"{told} before this request was answered; the tool may have run"
    assert await h.rate_count() == 1


class PumpingChild(FakeChild, PumpableChannel):
    """A fake channel that declares eager pumping and records whether the relay used it."""

    def __init__(self) -> None:
        super().__init__()
        self.pumped = False

    async def pump(self, handle: Handler, too_large: TooLargeHandler) -> None:
        self.pumped = True
        while (raw := await self.receive()) is not None:
            await handle(raw)


@pytest.mark.parametrize(
    ("client_pumps", "upstream_pumps", "store_eager_safe", "pumped"),
    [(True, True, True, True), (True, False, True, False), (True, True, False, False)],
)
async def test_relay_pumps_eagerly_only_when_both_channels_and_the_store_allow_it(
    client_pumps: bool, upstream_pumps: bool, store_eager_safe: bool, pumped: bool
) -> None:
    h = Harness()
    h.store.eager_safe = store_eager_safe
    client = PumpingChild() if client_pumps else FakeChild()
    upstream = PumpingChild() if upstream_pumps else FakeChild()
    h.router._send_client, h.router._send_upstream = client.send, upstream.send
    client.say({"jsonrpc": "2.0", "id": 1, "method": "ping"})
    await client.close()
    await asyncio.wait_for(relay(h.router, client, upstream), 10)
    assert upstream.sent == [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]
    pumps = [c.pumped for c in (client, upstream) if isinstance(c, PumpingChild)]
    assert pumps == [pumped] * len(pumps)
