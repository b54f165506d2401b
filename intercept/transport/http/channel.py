"""One client session as the router sees it: a `MessageChannel` that routes replies to HTTP streams.

Every client session gets its own `ListenerChannel`, which the router reads and writes exactly
as it would a stdio client; the listener's `SessionRunner` connects it to a fresh upstream, so
sessions share nothing and one client's messages never reach another's stream.

Responses to a POST's requests go back on that POST's stream. Server-initiated messages go to
the POST whose request carries their progress token, else to the session's GET stream, else to
the newest open POST, else wait (bounded) for a GET stream. Events of streams with ids are kept
in the session's replay log (`event_log`), so a client whose connection broke can resume them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from intercept.protocol import fastjson
from intercept.protocol.fastjson import id_key
from intercept.transport.http.event_log import EventLog, event_id
from intercept.transport.http.limits import ByteBudget
from intercept.transport.http.mailbox import Mailbox
from intercept.transport.http.sse import encode_event

log = logging.getLogger(__name__)

BACKLOG_LIMIT = 1000
"""Server-initiated messages kept for a GET stream that is not open yet; older ones are dropped."""

_stream_numbers = itertools.count(1)
"""Stream numbers are unique in the process, so an event id names one stream of one session."""


@dataclass(eq=False, slots=True)
class Stream:
    """Where one response's messages go: a POST's SSE or JSON answer, or the session's GET stream.

    `number` is None for streams without event ids (JSON answers, stateless requests). While no
    client reads the stream (`attached` is False) its events still go to the session's replay
    log, so a client can resume it.
    """

    number: int | None
    sse: bool
    queue: Mailbox[bytes | None] = field(default_factory=Mailbox)
    seq: int = 0
    attached: bool = True


@dataclass(eq=False, slots=True)
class Exchange(Stream):
    """One POST waiting for the responses to its requests."""

    pending: set[str] = field(default_factory=set)
    progress_tokens: set[str] = field(default_factory=set)
    status: int | None = None
    """An HTTP error status the upstream answered this request with (passed on to the client)."""
    plain: bool = False
    """The queue holds one raw JSON body to send with `status`, not SSE events."""
    keys: tuple[str, ...] = ()
    """The ids of all its requests, answered or not (what `_by_id` may still map to it)."""
    forgotten: bool = False


class ListenerChannel:
    """The router's view of one client session; see `intercept.transport.base.MessageChannel`."""

    def __init__(
        self,
        session_id: str,
        one_shot: bool = False,
        log: EventLog | None = None,
        envelope: dict[str, Any] | None = None,
        budget: ByteBudget | None = None,
    ) -> None:
        self.session_id = session_id
        self.one_shot = one_shot
        """A 2026-07-28 stateless request: the channel ends once its one exchange is answered."""
        self.envelope = envelope
        """A stateless request's `_meta` envelope, for the requests the proxy itself sends upstream."""
        self._inbox: Mailbox[bytes | None] = Mailbox()
        self._charges: deque[int] = deque()
        """What each message in the inbox holds of `budget` (none if the router was waiting for it)."""
        self._budget = budget
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_id: dict[str, Exchange] = {}
        self._exchanges: list[Exchange] = []
        self._get: Stream | None = None
        """The session's standalone (GET) stream, kept after its client leaves so it can resume."""
        self._backlog: deque[bytes] = deque(maxlen=BACKLOG_LIMIT)
        self.log = log or EventLog()
        self.closed = False
        self.last_active = time.monotonic()
        """When a request of this session last began or ended (idle expiry counts from it)."""

    def loop(self) -> asyncio.AbstractEventLoop:
        """The session's event loop, looked up once (each lookup is a system call on 3.11)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    # -- MessageChannel --------------------------------------------------------------------

    async def receive(self) -> bytes | None:
        if self.closed:
            return None
        item = await self._inbox.get()
        if item is None:
            self._inbox.put_nowait(None)
            return None
        charge = self._charges.popleft() if self._charges else 0  # none left once closed
        if charge and self._budget is not None:
            self._budget.give(charge)
        return item

    async def send(self, data: bytes) -> None:
        if self.closed:
            # The client ended the session (DELETE, shutdown): nobody reads what comes next. Like
            # a stdio client's closed stdout, not an error: the router still winds the session
            # down, counting every call in flight, until the upstream ends.
            return
        try:
            message = fastjson.loads(data)
        except ValueError:
            log.warning("router sent a message that is not JSON; dropped")
            return
        items = message if isinstance(message, list) else [message]
        responses = [m for m in items if isinstance(m, dict) and "method" not in m]
        if responses:
            self._route_response(data, [id_key(m.get("id")) for m in responses])
        else:
            self._route_server_message(data, items)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._inbox.put_nowait(None)
        if self._budget is not None:
            self._budget.give(sum(self._charges))  # messages the router will never take
        self._charges.clear()
        for exchange in self._exchanges:
            exchange.queue.put_nowait(None)
        if self._get is not None:
            self._get.queue.put_nowait(None)

    # -- routing ---------------------------------------------------------------------------

    def _emit(self, stream: Stream, data: bytes) -> None:
        stream.seq += 1
        if stream.sse:
            if stream.number is not None:
                encoded = encode_event(data, event_id(stream.number, stream.seq))
                self.log.append(stream.number, stream.seq, encoded)
            else:
                encoded = encode_event(data)
            if stream.attached:
                stream.queue.put_nowait(encoded)
        elif stream.attached:
            stream.queue.put_nowait(data)

    def _route_response(self, data: bytes, keys: list[str]) -> None:
        exchange = next((self._by_id[k] for k in keys if k in self._by_id), None)
        if exchange is None and "null" in keys and self._exchanges:
            # An error about a message whose id could not be read belongs to the newest POST.
            exchange = self._exchanges[-1]
            keys = list(exchange.pending)
        if exchange is None:
            log.debug("response for an id no open POST is waiting for; dropped")
            return
        for key in keys:
            self._by_id.pop(key, None)
        exchange.pending.difference_update(keys)
        if exchange.status is not None and exchange.sse and exchange.seq == 0 and not exchange.pending:
            # The upstream refused the request with an HTTP error: answer with that status, as JSON.
            exchange.plain = True
            exchange.seq = 1
            if exchange.attached:
                exchange.queue.put_nowait(data)
        else:
            self._emit(exchange, data)
        if not exchange.pending:
            if exchange.attached:
                exchange.queue.put_nowait(None)
            self._forget(exchange)

    def _route_server_message(self, data: bytes, items: list[Any]) -> None:
        for item in items:
            params = item.get("params") if isinstance(item, dict) else None
            token = params.get("progressToken") if isinstance(params, dict) else None
            if token is not None:
                key = id_key(token)
                for exchange in self._exchanges:
                    if key in exchange.progress_tokens:
                        self._emit(exchange, data)
                        return
        if self._get is not None and self._get.attached:
            self._emit(self._get, data)
            return
        newest = next((e for e in reversed(self._exchanges) if e.attached), None)
        if newest is not None:
            self._emit(newest, data)
        else:
            self._backlog.append(data)

    def _forget(self, exchange: Exchange) -> None:
        if exchange.forgotten:
            return
        exchange.forgotten = True
        if exchange in self._exchanges:
            self._exchanges.remove(exchange)
        by_id = self._by_id
        for key in exchange.keys:
            if by_id.get(key) is exchange:
                del by_id[key]

    # -- called by the HTTP handlers -------------------------------------------------------

    def submit(
        self, data: bytes, requests: list[dict[str, Any]], sse: bool = True, charge: int = 0
    ) -> Exchange | None:
        """Hand a POSTed message to the router; an exchange if it holds requests to answer.
        `charge`: what the message holds of the byte budget until the router takes it."""
        exchange: Exchange | None = None
        if requests:
            tokens: set[str] = set()
            for request in requests:
                meta = (
                    request.get("params", {}).get("_meta")
                    if isinstance(request.get("params"), dict)
                    else None
                )
                if isinstance(meta, dict) and meta.get("progressToken") is not None:
                    tokens.add(id_key(meta["progressToken"]))
            number = next(_stream_numbers) if sse and not self.one_shot else None
            if number is not None:
                self.log.open_stream(number)
            keys = tuple(id_key(r["id"]) for r in requests)
            exchange = Exchange(
                number, sse, Mailbox(self.loop()), pending=set(keys), progress_tokens=tokens, keys=keys
            )
            self._exchanges.append(exchange)
            for key in exchange.pending:
                self._by_id[key] = exchange
        self._charges.append(charge)
        self._inbox.put_nowait(data)
        return exchange

    def hold_for_get(self, data: bytes) -> None:
        """A server message that reached a POST answered as one JSON body: the GET stream carries it."""
        self._backlog.append(data)

    def note_status(self, request_id: Any, status: int) -> None:
        """The upstream answered this request with HTTP `status` (an error): answer with it too."""
        exchange = self._by_id.get(id_key(request_id))
        if exchange is not None:
            exchange.status = status

    def router_waiting(self) -> bool:
        """The router waits for this session's next message (it takes one on its next turn)."""
        return self._inbox.waiting()

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def busy(self) -> bool:
        """A client is reading one of this session's streams (a POST's answer or the GET stream)."""
        return (self._get is not None and self._get.attached) or any(e.attached for e in self._exchanges)

    def in_flight(self, requests: list[dict[str, Any]]) -> bool:
        """True if one of these ids is still awaiting an answer (its answer would be ambiguous)."""
        return any(id_key(r["id"]) in self._by_id for r in requests)

    def abandon(self, exchange: Exchange) -> None:
        """The POST is answered or its client went away; later answers for it are dropped."""
        self._forget(exchange)
        self.touch()
        if self.one_shot and not self._exchanges and not self.closed:
            self.closed = True
            self._inbox.put_nowait(None)

    def detach(self, stream: Stream, queue: Mailbox[bytes | None]) -> None:
        """The client reading `queue` is gone. A stream still awaiting answers keeps collecting
        them in the replay log (a client may resume it); a stateless one is abandoned."""
        if stream.queue is not queue:
            return  # a resumed stream took over
        stream.attached = False
        self.touch()
        if isinstance(stream, Exchange) and (self.one_shot or not stream.pending):
            self.abandon(stream)

    def open_get_stream(self) -> Stream | None:
        """A new standalone stream; None if a client is already reading one."""
        if self._get is not None and self._get.attached:
            return None
        number = next(_stream_numbers)
        self.log.open_stream(number)
        self._get = Stream(number, True)
        while self._backlog:
            self._emit(self._get, self._backlog.popleft())
        return self._get

    def resume(self, number: int, after: int) -> Stream:
        """The stream `number` of this session from after event `after`: its held events, then,
        while it is live, whatever it carries next. UnknownStream or EventsLost if impossible."""
        replayed = self.log.replay(number, after)
        live: Stream | None = next((e for e in self._exchanges if e.number == number), None)
        if live is None and self._get is not None and self._get.number == number:
            live = self._get
        if live is None:
            done = Stream(None, True)
            for encoded in replayed:
                done.queue.put_nowait(encoded)
            done.queue.put_nowait(None)
            return done
        live.queue.put_nowait(None)  # ends a reader still attached to the broken connection
        live.queue = Mailbox(self._loop)
        live.attached = True
        for encoded in replayed:
            live.queue.put_nowait(encoded)
        if live is self._get:
            while self._backlog:
                self._emit(live, self._backlog.popleft())
        return live
