"""The shared child for stateless requests: ids and progress tokens rewritten per lane, never crossed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from intercept.transport.http.shared_child import SharedChild


class FakeChild:
    """Records what it is sent; the test plays the server by calling `say`."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False

    async def receive(self) -> bytes | None:
        return await self._out.get()

    async def send(self, data: bytes) -> None:
        self.sent.append(json.loads(data))

    async def close(self) -> None:
        self.closed = True
        self._out.put_nowait(None)

    async def wait(self) -> int:
        return 0

    def say(self, message: Any) -> None:
        self._out.put_nowait(json.dumps(message).encode())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def call(request_id: Any, token: Any = None) -> bytes:
    params: dict[str, Any] = {"name": "add"}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}).encode()


async def test_two_lanes_with_the_same_ids_get_their_own_answers_and_progress() -> None:
    children: list[FakeChild] = []

    async def start() -> FakeChild:
        children.append(FakeChild())
        return children[-1]

    pool = SharedChild(start)
    first, second = pool.lane(), pool.lane()
    await first.send(call(1, token="t"))
    await second.send(call(1, token="t"))
    child = children[0]
    assert len(children) == 1
    wire = [m["id"] for m in child.sent]
    tokens = [m["params"]["_meta"]["progressToken"] for m in child.sent]
    assert len(set(wire)) == 2 and 1 not in wire and len(set(tokens)) == 2
    child.say(
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {"progressToken": tokens[1], "progress": 5},
        }
    )
    child.say({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "unattributed"}})
    child.say({"jsonrpc": "2.0", "id": wire[1], "result": {"n": 2}})
    child.say({"jsonrpc": "2.0", "id": wire[0], "result": {"n": 1}})
    await settle()
    assert json.loads(await second.receive() or b"") == {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": "t", "progress": 5},
    }
    assert json.loads(await second.receive() or b"") == {"jsonrpc": "2.0", "id": 1, "result": {"n": 2}}
    assert json.loads(await first.receive() or b"") == {"jsonrpc": "2.0", "id": 1, "result": {"n": 1}}
    await pool.close()


async def test_cancellation_names_the_wire_id_and_a_closed_lane_cancels_what_it_left() -> None:
    child = FakeChild()

    async def start() -> FakeChild:
        return child

    pool = SharedChild(start)
    lane = pool.lane()
    await lane.send(call("a"))
    await lane.send(call("b"))
    wire_a, wire_b = child.sent[0]["id"], child.sent[1]["id"]
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": "a"}}
    await lane.send(json.dumps(cancel).encode())
    assert child.sent[2]["params"]["requestId"] == wire_a
    await lane.close()
    assert {m["params"]["requestId"] for m in child.sent[3:]} == {wire_a, wire_b}
    assert await lane.receive() is None
    await pool.close()


async def test_the_childs_own_requests_are_refused_and_its_exit_ends_lanes_in_flight() -> None:
    children: list[FakeChild] = []

    async def start() -> FakeChild:
        children.append(FakeChild())
        return children[-1]

    pool = SharedChild(start)
    waiting = pool.lane()
    await waiting.send(call(1))
    children[0].say({"jsonrpc": "2.0", "id": 99, "method": "sampling/createMessage", "params": {}})
    await settle()
    assert children[0].sent[-1]["id"] == 99 and children[0].sent[-1]["error"]["code"] == -32601
    await children[0].close()  # the child exits
    assert await asyncio.wait_for(waiting.receive(), 5) is None
    later = pool.lane()
    await later.send(call(2))
    assert len(children) == 2 and children[1].sent[0]["method"] == "tools/call"
    await pool.close()


async def test_the_proxys_own_requests_get_the_clients_envelope() -> None:
    child = FakeChild()

    async def start() -> FakeChild:
        return child

    envelope = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
    pool = SharedChild(start)
    lane = pool.lane(envelope)
    await lane.send(json.dumps({"jsonrpc": "2.0", "id": "own-1", "method": "tools/list"}).encode())
    assert child.sent[0]["params"] == {"_meta": envelope}
    await pool.close()
