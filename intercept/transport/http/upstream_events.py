"""The upstream's event streams, read into the channel's inbox: a POST's SSE answer, its resumption
with `Last-Event-ID` when the server closes it early (SEP-1699 polling), and the GET stream of
server-initiated messages, reopened (and resumed) when it drops.

An SSE event id that could not be a header value is not used to resume.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp

from intercept.protocol import fastjson
from intercept.protocol.fastjson import id_key
from intercept.protocol.mcp_headers import valid_field_value
from intercept.transport.base import FrameTooLarge
from intercept.transport.http.mailbox import Mailbox
from intercept.transport.http.sse import SseEvent, decode_body, decode_stream
from intercept.transport.http.upstream_answer import HTTP_ERRORS, Answer, error_response
from intercept.transport.http.upstream_session import BAD_PROTOCOL_VERSION, UpstreamSession

log = logging.getLogger(__name__)

LAST_EVENT_HEADER = "last-event-id"
GET_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)

Inbox = Mailbox[bytes | FrameTooLarge | None]
Get = Callable[[dict[str, str]], AbstractAsyncContextManager[aiohttp.ClientResponse]]
"""A GET of the upstream URL with these headers."""


class UpstreamEvents:
    """Turns the upstream's SSE into messages (or `FrameTooLarge`) in a channel's inbox."""

    def __init__(
        self, inbox: Inbox, session: UpstreamSession, get: Get, max_bytes: int, closed: Callable[[], bool]
    ) -> None:
        self._inbox = inbox
        self._session = session
        self._get = get
        self._max = max_bytes
        self._closed = closed
        self._get_task: asyncio.Task[None] | None = None

    async def read_answer(self, answer: Answer, pending: set[str]) -> None:
        """Queue a POST's event stream, resuming it if it ends early; what stays in `pending` (ids
        as keys) never got an answer."""
        last_id: str | None = None
        complete = answer.complete_body()
        if complete is not None:
            # The usual answer is already whole: decode it without any async iteration.
            for item in decode_body(complete, self._max):
                last_id = self._take(item, pending) or last_id
        else:
            async for item in decode_stream(answer.chunks(), self._max):
                last_id = self._take(item, pending) or last_id
        if pending and last_id is not None and self._session.id is not None:
            # The server closed the stream before answering; resume it (SEP-1699 polling).
            await self._resume(last_id, pending)

    def _take(self, item: SseEvent | FrameTooLarge, pending: set[str]) -> str | None:
        """Queue one decoded item of a POST's stream; the event's id, if it has one."""
        if isinstance(item, FrameTooLarge):
            self._inbox.put_nowait(item)
            return None
        self._accept_event(item, pending)
        return _resumable(item.id)

    def _accept_event(self, event: SseEvent, pending: set[str]) -> None:
        if event.event != "message" or not event.data:
            return
        try:
            parsed = fastjson.loads(event.data)
        except ValueError:
            log.warning("upstream sent an SSE event that is not JSON; dropped")
            return
        for item in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(item, dict) and "method" not in item:
                pending.discard(id_key(item.get("id")))
                if not self._session.note_protocol([item]):
                    self._inbox.put_nowait(error_response(item.get("id"), BAD_PROTOCOL_VERSION))
                    return
        self._inbox.put_nowait(event.data.encode())

    def _stream_headers(self, last_id: str | None) -> dict[str, str]:
        headers = self._session.base_headers()
        headers["accept"] = "text/event-stream"
        if last_id is not None:
            headers[LAST_EVENT_HEADER] = last_id
        return headers

    async def _resume(self, last_id: str, pending: set[str]) -> None:
        for delay in GET_RETRY_SECONDS:
            if not pending or self._closed():
                return
            try:
                async with self._get(self._stream_headers(last_id)) as response:
                    if response.status >= 400:
                        return
                    async for item in decode_stream(response.content.iter_any(), self._max):
                        if isinstance(item, FrameTooLarge):
                            self._inbox.put_nowait(item)
                            continue
                        last_id = _resumable(item.id) or last_id
                        self._accept_event(item, pending)
            except HTTP_ERRORS:
                await asyncio.sleep(delay)

    # -- the GET stream --------------------------------------------------------------------

    def open_get_stream(self) -> None:
        """Start following the GET stream, once a session exists (at most one)."""
        if self._session.id is not None and self._get_task is None and not self._closed():
            self._get_task = asyncio.create_task(self._listen())

    def stop(self) -> asyncio.Task[None] | None:
        """Cancel the GET stream; its task, to await."""
        if self._get_task is not None:
            self._get_task.cancel()
        return self._get_task

    async def _listen(self) -> None:
        """The GET stream: server-initiated requests and notifications outside any POST."""
        last_id: str | None = None
        attempt = 0
        while not self._closed() and self._session.id is not None:
            try:
                async with self._get(self._stream_headers(last_id)) as response:
                    if response.status >= 400:
                        # 405: the server offers no GET stream; anything else: not retried.
                        return
                    attempt = 0
                    async for item in decode_stream(response.content.iter_any(), self._max):
                        if isinstance(item, FrameTooLarge):
                            self._inbox.put_nowait(item)
                            continue
                        last_id = _resumable(item.id) or last_id
                        if item.event == "message" and item.data:
                            self._inbox.put_nowait(item.data.encode())
            except HTTP_ERRORS:
                pass
            if attempt >= len(GET_RETRY_SECONDS):
                log.warning("upstream GET stream lost; server-initiated messages now arrive only on POSTs")
                return
            await asyncio.sleep(GET_RETRY_SECONDS[attempt])
            attempt += 1


def _resumable(event_id: str | None) -> str | None:
    """An SSE event id fit to send back as `Last-Event-ID`, else None (the stream resumes from an
    earlier id, or not at all)."""
    return event_id if event_id and valid_field_value(event_id) else None
