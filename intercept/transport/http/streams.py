"""How a session's messages reach the client: a POST's SSE or JSON answer, the GET stream, and resumption.

A POST whose request is answered at once gets one plain response (the usual call); one still
waiting streams its events as they come, after a priming event (an id, no data) when the answer
is slow, so that a client whose connection breaks early can still resume. A GET with
`Last-Event-ID` replays that stream's later events from the session's log, then follows it
while it is live.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from intercept.protocol import fastjson, jsonrpc
from intercept.protocol.mcp_headers import SESSION_HEADER
from intercept.transport.http.asgi import Headers, Reply, Response, error_reply
from intercept.transport.http.channel import Exchange, ListenerChannel, Stream
from intercept.transport.http.event_log import EventsLost, UnknownStream, event_id, parse_event_id
from intercept.transport.http.mailbox import Mailbox

PRIME_AFTER_SECONDS = 0.25
"""A POST answered later than this gets a priming event (an id, no data) first, so a client whose
connection breaks before the first message can still resume (2025-11-25 and later)."""
PRIMING_FROM_VERSION = "2025-11-25"
_PRIME = b""
"""Queue marker: the priming timer fired (real events are never empty)."""

_ENDED_UNANSWERED = "the session ended before the request was answered"


async def sse_answer(session: ListenerChannel, exchange: Exchange, headers: Headers, prime: bool) -> Response:
    """SSE; when the first message already completes the exchange (the usual call), one plain
    response carries it, which saves the streaming machinery and a network write."""
    queue = exchange.queue
    timer = session.loop().call_later(PRIME_AFTER_SECONDS, queue.put_nowait, _PRIME) if prime else None
    try:
        first = await queue.get()
    except BaseException:
        session.abandon(exchange)
        raise
    finally:
        if timer is not None:
            timer.cancel()
    if first is None:
        session.abandon(exchange)
        return error_reply(502, _ENDED_UNANSWERED, jsonrpc.UPSTREAM_ERROR)
    if first == _PRIME:
        assert exchange.number is not None
        priming = f"id: {event_id(exchange.number, 0)}\ndata: \n\n".encode()
        return StreamingResponse(
            _events(session, exchange, queue, priming), media_type="text/event-stream", headers=headers
        )
    if exchange.plain:
        session.abandon(exchange)
        return Reply(exchange.status or 200, first, "application/json", headers)
    if not exchange.pending:
        # Everything for this exchange is already queued, up to its end marker.
        events = [first]
        while (item := queue.get_nowait()) is not None:
            if item:
                events.append(item)
        session.abandon(exchange)
        return Reply(200, b"".join(events), "text/event-stream", headers)
    return StreamingResponse(
        _events(session, exchange, queue, first), media_type="text/event-stream", headers=headers
    )


async def json_answer(session: ListenerChannel, exchange: Exchange, headers: Headers) -> Response:
    """One JSON body with every answer, for a client that does not accept SSE."""
    answers: list[Any] = []
    try:
        while (item := await exchange.queue.get()) is not None:
            parsed = fastjson.loads(item)
            if isinstance(parsed, dict) and "method" in parsed:
                session.hold_for_get(item)
                continue
            answers.extend(parsed if isinstance(parsed, list) else [parsed])
    finally:
        session.abandon(exchange)
    if not answers:
        return error_reply(502, _ENDED_UNANSWERED, jsonrpc.UPSTREAM_ERROR)
    body = json.dumps(answers[0] if len(answers) == 1 else answers, ensure_ascii=False, separators=(",", ":"))
    return Reply(exchange.status or 200, body.encode(), "application/json", headers)


def get_stream(headers: Headers, session: ListenerChannel) -> Response:
    """A GET: the session's standalone stream, or with `Last-Event-ID` the resumption of one."""
    if "text/event-stream" not in headers.get("accept", ""):
        return error_reply(406, "GET needs Accept: text/event-stream")
    last = headers.get("last-event-id")
    if last is not None:
        return _resume(session, last)
    stream = session.open_get_stream()
    if stream is None:
        return error_reply(409, "this session already has a GET stream open")
    return _streaming(session, stream, b": stream open\n\n")


def _resume(session: ListenerChannel, last: str) -> Response:
    """GET with `Last-Event-ID`: that stream's later events, then the stream itself if live."""
    position = parse_event_id(last)
    if position is None:
        return error_reply(400, "Last-Event-ID is not an event id this server sent")
    try:
        stream = session.resume(*position)
    except UnknownStream:
        return error_reply(404, "Last-Event-ID names no stream of this session")
    except EventsLost:
        return error_reply(410, "events after Last-Event-ID are no longer held; the stream cannot resume")
    return _streaming(session, stream, b": stream resumed\n\n")


def _streaming(session: ListenerChannel, stream: Stream, first: bytes) -> StreamingResponse:
    return StreamingResponse(
        _events(session, stream, stream.queue, first),
        media_type="text/event-stream",
        headers={SESSION_HEADER: session.session_id},
    )


async def _events(
    session: ListenerChannel, stream: Stream, queue: Mailbox[bytes | None], first: bytes
) -> AsyncIterator[bytes]:
    try:
        yield first
        while (item := await queue.get()) is not None:
            if item:
                yield item
    finally:
        session.detach(stream, queue)
