"""Resuming a broken SSE stream with `Last-Event-ID` at `intercept run --listen` (2025-11-25).

A real listener in front of a real server-everything (streamableHttp), driven with plain HTTP so
the test can break a connection mid-call: the client reads the first progress event of a long
call, drops the connection, and resumes with a GET carrying the last event id it saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.http_support import SSE_ACCEPT, Service, proxy, raw_session, rpc
from tests.e2e.test_http_proxy import everything  # noqa: F401  (the module-scoped server fixture)

pytestmark = pytest.mark.e2e

VERSION = {"mcp-protocol-version": "2025-11-25"}


@pytest.fixture
def listener(tmp_path: Path, everything: Service) -> Iterator[Service]:  # noqa: F811
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools: {}\n")
    service = proxy(policy, "--state", "memory", "--no-audit", "--upstream", everything.url)
    yield service
    service.stop()


async def read_events(
    response: httpx.Response, stop: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """SSE events as {"id", "data"} until `stop(events so far)` is true (or the stream ends)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line.startswith("id:"):
            current["id"] = line[3:].strip()
        elif line.startswith("data:"):
            current["data"] = line[5:].strip()
        elif line == "" and current:
            events.append(current)
            current = {}
            if stop(events):
                break
    return events


def answered(request_id: Any) -> Callable[[list[dict[str, Any]]], bool]:
    def stop(events: list[dict[str, Any]]) -> bool:
        data = events[-1].get("data")
        return isinstance(data, str) and bool(data) and json.loads(data).get("id") == request_id

    return stop


def long_call(request_id: int) -> dict[str, Any]:
    return rpc(
        "tools/call",
        request_id,
        name="trigger-long-running-operation",
        arguments={"duration": 1.5, "steps": 5},
        _meta={"progressToken": f"progress-{request_id}"},
    )


def progress_of(events: list[dict[str, Any]]) -> list[float]:
    messages = [json.loads(e["data"]) for e in events if e.get("data")]
    return [m["params"]["progress"] for m in messages if m.get("method") == "notifications/progress"]


async def test_a_dropped_post_stream_resumes_after_its_last_event_and_only_in_its_session(
    listener: Service,
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        sid = await raw_session(client, listener.url, VERSION)
        other = await raw_session(client, listener.url, VERSION)
        headers = {**SSE_ACCEPT, **VERSION, "mcp-session-id": sid}
        async with client.stream("POST", listener.url, json=long_call(5), headers=headers) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            seen = await read_events(response, lambda events: bool(progress_of(events)))
            # ... and the connection is dropped after the first progress event.
        # The call outlasted the priming delay: an id with no data came first, so even a client
        # that lost the stream before any message could resume it.
        assert seen[0]["id"].endswith("-0") and not seen[0].get("data")
        assert progress_of(seen) == [1]
        last_id = seen[-1]["id"]

        foreign = await client.get(
            listener.url,
            headers={
                **VERSION,
                "accept": "text/event-stream",
                "mcp-session-id": other,
                "last-event-id": last_id,
            },
        )
        assert foreign.status_code == 404 and "progress" not in foreign.text

        resume = {**VERSION, "accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": last_id}
        async with client.stream("GET", listener.url, headers=resume) as resumed:
            assert resumed.status_code == 200
            rest = await read_events(resumed, answered(5))
        assert progress_of(rest) == [2, 3, 4, 5]
        final = json.loads(rest[-1]["data"])
        assert (
            final["id"] == 5 and "Long running operation completed" in final["result"]["content"][0]["text"]
        )
        ids = [e["id"] for e in rest if "id" in e]
        assert len(set(ids)) == len(ids) and last_id not in ids

        # The whole stream again from its priming id: every event once, in order.
        again = {**resume, "last-event-id": seen[0]["id"]}
        async with client.stream("GET", listener.url, headers=again) as replayed:
            everything_again = await read_events(replayed, answered(5))
        assert progress_of(everything_again) == [1, 2, 3, 4, 5]

        malformed = await client.get(listener.url, headers={**resume, "last-event-id": "not-an-id"})
        assert malformed.status_code == 400


async def test_a_fast_call_is_one_plain_sse_response_whose_event_carries_an_id(listener: Service) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        sid = await raw_session(client, listener.url, VERSION)
        headers = {**SSE_ACCEPT, **VERSION, "mcp-session-id": sid}
        body = rpc("tools/call", 9, name="echo", arguments={"message": "hi"})
        answered = await client.post(listener.url, json=body, headers=headers)
        lines = answered.text.splitlines()
        assert lines[0].startswith("id: ") and lines[1] == "event: message"
        assert json.loads(lines[2][6:])["result"]["content"][0]["text"] == "Echo: hi"
        # The same event can be fetched again by resuming from just before it.
        number = lines[0][4:].split("-")[0]
        resume = {
            **VERSION,
            "accept": "text/event-stream",
            "mcp-session-id": sid,
            "last-event-id": f"{number}-0",
        }
        again = await client.get(listener.url, headers=resume)
        assert f"id: {number}-1" in again.text and "Echo: hi" in again.text
