"""The message router: `tools/call` to the engine, `tools/list` results to the hide filter, the rest through.

`Router` is transport-agnostic. A transport feeds it whole messages (bytes, one message or
batch per call) from each side and gives it two send callables:

    router = Router(engine, store, send_client=client.send, send_upstream=upstream.send, audit=log)
    await router.from_client(raw)        # each message the agent sent
    await router.from_upstream(raw)      # each message the server sent
    await router.upstream_closed(reason)  # the upstream is gone: pending requests get errors
    router.engine = Engine(new_policy)   # hot reload; counters are untouched

`intercept.relay.relay(router, client_channel, upstream_channel)` pumps two `MessageChannel`s
through a router until the upstream ends. A Router holds
the state of one client session (pending request ids, learned tool schemas); use one per
session.

What the router guarantees (the security contract, see docs/PROXY.md):

* every message is parsed strictly (`intercept.protocol.jsonrpc`); one that cannot be read
  unambiguously is answered with a JSON-RPC error and never forwarded;
* what is forwarded is the re-serialised object that was evaluated; received bytes are reused
  only when they are byte for byte that re-serialisation (`jsonrpc.parse_canonical`);
* batches are checked element by element; a denied element never reaches the upstream;
* a denied call, or one refused before it is forwarded, reserves nothing; once a call has been
  forwarded, only a tool result the server itself marks `isError: true` gives its counters back.
  A JSON-RPC error, a cancellation, the client leaving, the upstream's death or closing, and an
  answer the proxy could not relay all leave it counted: the tool may have run, and each of
  those can be caused at will (an SDK answers every request in flight with an error when its
  input closes, or when it is cancelled);
* cancellation concerns the counting of `tools/call` only: every request stays tracked for the
  rest of its life, and hidden tools are removed from every tools listing relayed to the client
  (a `result` with a `tools` array, whatever request it answers, tracked or not), other fields kept.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from intercept.approvals.coordinator import ApprovalService, Held, SessionApprovals
from intercept.engine import Admission, ApprovalNeed, Decision, Denial, Engine, ToolCall, ToolSchema
from intercept.pinning import DriftSink, OnDrift, PinGuard
from intercept.protocol import jsonrpc
from intercept.protocol.jsonrpc import Envelope, MessageError, MessageId
from intercept.shadow import shadow_decide
from intercept.state.base import CounterStore, Reservation, StateError
from intercept.transport.base import FrameTooLarge

log = logging.getLogger("intercept.proxy")

Send = Callable[[bytes], Awaitable[None]]

SCHEMA_FETCH_TIMEOUT_SECONDS = 10.0
SCHEMA_FETCH_MAX_PAGES = 1000
CANCELLED_CALLS_REMEMBERED = 1024


class AuditSink(DriftSink, Protocol):
    """Where the router reports decisions (see `intercept.audit.AuditLog`)."""

    def tool_call(
        self,
        tool: str,
        decision: str,
        rule: str,
        reason: str,
        arguments: Mapping[str, Any],
        would_deny: Sequence[Denial] = (),
    ) -> None: ...


@dataclass(slots=True)
class _Pending:
    method: str
    tool: str = ""
    reservation: Reservation | None = None
    refundable: bool = True
    """False when the id was a cancelled call's: an `isError` answer may be that call's, not this one's."""


SERVER_EXITED = "the MCP server exited"
CLIENT_LEFT = "the client ended the session"


class Router:
    """Routes one client session's messages between the client and the upstream."""

    def __init__(
        self,
        engine: Engine,
        store: CounterStore,
        *,
        send_client: Send,
        send_upstream: Send,
        audit: AuditSink | None = None,
        fail_open: bool = False,
        clock: Callable[[], float] = time.time,
        schema_fetch_timeout: float = SCHEMA_FETCH_TIMEOUT_SECONDS,
        shadow: bool = False,
        approvals: ApprovalService | None = None,
        on_drift: OnDrift = "deny",
    ) -> None:
        self.engine = engine
        self.pins = PinGuard(on_drift, audit)
        self.shadow = shadow
        self.store = store
        self._send_client = send_client
        self._send_upstream = send_upstream
        self._audit = audit
        self._fail_open = fail_open
        self._clock = clock
        self._fetch_timeout = schema_fetch_timeout
        self._pending: dict[MessageId, _Pending] = {}
        self.schemas: dict[str, ToolSchema] = {}
        self._listing_complete = False
        # The proxy's own request ids: unguessable strings, so no client id can ever equal one.
        self._own_prefix = f"intercept-{secrets.token_hex(12)}-"
        self._own_counter = 0
        self._own_waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._fetch_lock = asyncio.Lock()
        self._upstream_gone: str | None = None
        # Cancelled calls, still counted, until the server answers them or the session ends.
        self._cancelled_calls: collections.OrderedDict[MessageId, _Pending] = collections.OrderedDict()
        self.approvals = SessionApprovals(approvals, send_client, send_upstream, lambda: self.engine.policy)

    # -- client -> upstream ------------------------------------------------------------------

    async def from_client(self, raw: bytes) -> None:
        """Check one message (or batch) from the client; forward what passes, answer the rest."""
        try:
            parsed, canonical = jsonrpc.parse_canonical(raw)
        except MessageError as exc:
            log.warning("client message rejected: %s", exc.message)
            await self._send_client(jsonrpc.encode_error(exc.code, exc.message, None))
            return
        if isinstance(parsed, list):
            await self._client_batch(parsed)
            return
        forward, reply = await self._client_element(parsed, raw if canonical else None)
        if forward is not None:
            await self._send_upstream(forward)
        if reply is not None:
            await self._send_client(reply)

    async def _client_batch(self, elements: list[Any]) -> None:
        if not elements:
            await self._send_client(jsonrpc.encode_error(jsonrpc.INVALID_REQUEST, "empty batch", None))
            return
        forwards: list[bytes] = []
        replies: list[bytes] = []
        for element in elements:
            forward, reply = await self._client_element(element)
            if forward is not None:
                forwards.append(forward)
            if reply is not None:
                replies.append(reply)
        if forwards:
            await self._send_upstream(b"[" + b",".join(forwards) + b"]")
        if replies:
            await self._send_client(b"[" + b",".join(replies) + b"]")

    async def _client_element(
        self, element: Any, encoded_already: bytes | None = None
    ) -> tuple[bytes | None, bytes | None]:
        """(bytes to forward, bytes to answer the client); either may be None.

        `encoded_already` is `jsonrpc.encode(element)` when the caller has it (see `parse_canonical`).
        """
        try:
            env = jsonrpc.classify(element)
            try:
                encoded = encoded_already if encoded_already is not None else jsonrpc.encode(element)
            except MessageError as exc:
                exc.message_id = env.id
                raise
            if self.approvals.observe(env):  # the proxy's own exchange with the client, or a held call's
                return None, None
            if env.kind == "request":
                return await self._client_request(env, encoded)
            if env.kind == "notification":
                method = env.method
                assert method is not None
                if method == "tools/call":
                    # A call without an id would run unanswered and uncounted: never forward it.
                    raise MessageError(jsonrpc.INVALID_REQUEST, "tools/call must have an id")
                if method == "notifications/cancelled":
                    await self._cancelled(env)
                elif method not in jsonrpc.KNOWN_METHODS:
                    _refuse_look_alike(method, None)
            return encoded, None
        except MessageError as exc:
            log.warning("client message rejected: %s", exc.message)
            return None, jsonrpc.encode_error(exc.code, exc.message, exc.message_id)

    async def _client_request(self, env: Envelope, encoded: bytes) -> tuple[bytes | None, bytes | None]:
        message_id = env.id
        assert message_id is not None and env.method is not None
        if message_id in self._pending or (
            isinstance(message_id, str) and message_id.startswith(self._own_prefix)
        ):
            raise MessageError(
                jsonrpc.INVALID_REQUEST, "request id is already in use by a pending request", message_id
            )
        if self._upstream_gone is not None:
            return None, jsonrpc.encode_error(
                jsonrpc.UPSTREAM_ERROR, f"{self._upstream_gone}; nothing more can be forwarded", message_id
            )
        reused = await self._settle_cancelled(message_id) if self._cancelled_calls else False
        if env.method == "tools/call":
            return await self._tools_call(env, message_id, encoded, refundable=not reused)
        if env.method not in jsonrpc.KNOWN_METHODS:
            _refuse_look_alike(env.method, message_id)
        self._pending[message_id] = _Pending(env.method)
        return encoded, None

    async def _tools_call(
        self, env: Envelope, message_id: MessageId, encoded: bytes, refundable: bool = True, held: Held = None
    ) -> tuple[bytes | None, bytes | None]:
        params = env.obj.get("params")
        if not isinstance(params, dict):
            raise MessageError(jsonrpc.INVALID_PARAMS, "tools/call needs params with a tool name", message_id)
        name = params.get("name")
        if not isinstance(name, str):
            raise MessageError(jsonrpc.INVALID_PARAMS, "tools/call params.name must be a string", message_id)
        arguments = params.get("arguments", {})
        if not isinstance(arguments, dict):
            raise MessageError(
                jsonrpc.INVALID_PARAMS, "tools/call params.arguments must be an object", message_id
            )
        engine = self.engine
        pin = engine.pins.get(name)
        if (engine.needs_schema(name) and name not in self.schemas) or (
            pin is not None and not self.pins.known(name)
        ):
            await self._fetch_schemas()
        pin_denial = self.pins.check(name, pin) if pin is not None else None
        call = ToolCall(name, arguments, approved=held is True)
        if isinstance(held, Denial):
            decision: Decision = held
        elif pin_denial is not None and not self.shadow:
            decision = pin_denial
        else:
            decide = shadow_decide if self.shadow else Engine.decide
            decision = await decide(engine, call, self.store, self._clock(), self.schemas, self._fail_open)
            if pin_denial is not None and isinstance(decision, Admission):
                decision = Admission(decision.reservation, decision.rule, (pin_denial, *decision.would_deny))
        if isinstance(decision, ApprovalNeed):  # other rules admit it; nothing is reserved before approval
            self.approvals.hold(call, decision, self._tools_call, env, message_id, encoded, refundable)
            return None, None
        if isinstance(decision, Denial):
            if self._audit is not None:
                self._audit.tool_call(name, "deny", decision.rule, decision.reason, arguments)
            result = {"content": [{"type": "text", "text": decision.text}], "isError": True}
            meta = params.get("_meta")
            version = meta.get("io.modelcontextprotocol/protocolVersion") if isinstance(meta, dict) else None
            if isinstance(version, str) and version >= "2026-07-28":
                result["resultType"] = "complete"  # required by 2026-07-28 clients; older ones may reject it
            return None, jsonrpc.encode(jsonrpc.result_object(message_id, result))
        if self._audit is not None:
            self._audit.tool_call(name, "allow", decision.rule, "", arguments, decision.would_deny)
        self._pending[message_id] = _Pending("tools/call", name, decision.reservation, refundable)
        return encoded, None

    async def _cancelled(self, env: Envelope) -> None:
        """A cancelled call stays counted unless the server answers it with an `isError` result.

        A server may finish a cancelled call anyway (a tool that has started a payment or a job
        cannot always stop), may not answer at all (the specification tells it not to), or may
        answer with an error (the Python SDK 1.x does, for every cancelled request). None of
        that says the tool did not run, and giving the quota back would let an agent run a
        limited tool without limit by calling and cancelling at once. The call is remembered
        apart from the pending requests, so its id may be reused; any other request, a
        `tools/list` above all, stays pending exactly as it was: its answer is still filtered.
        """
        params = env.obj.get("params") or {}
        request_id = params.get("requestId")
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            return
        pending = self._pending.get(request_id)
        if pending is None or pending.reservation is None or pending.method != "tools/call":
            return
        del self._pending[request_id]
        self._cancelled_calls[request_id] = pending
        while len(self._cancelled_calls) > CANCELLED_CALLS_REMEMBERED:
            _, oldest = self._cancelled_calls.popitem(last=False)
            await self._settle(oldest, refund=False)

    async def _settle_cancelled(self, message_id: MessageId) -> bool:
        """Count a cancelled call whose id a new request reuses (its answers are now ambiguous);
        True if there was one."""
        cancelled = self._cancelled_calls.pop(message_id, None)
        if cancelled is None:
            return False
        await self._settle(cancelled, refund=False)
        return True

    # -- upstream -> client ------------------------------------------------------------------

    async def from_upstream(self, raw: bytes) -> None:
        """Relay one message (or batch) from the upstream, settling and filtering responses."""
        try:
            parsed, canonical = jsonrpc.parse_canonical(raw)
        except MessageError as exc:
            log.error("upstream message dropped: %s", exc.message)
            return
        if isinstance(parsed, list):
            out = [
                encoded
                for element in parsed
                if (encoded := await self._upstream_element(element)) is not None
            ]
            if out:
                await self._send_client(b"[" + b",".join(out) + b"]")
            return
        encoded = await self._upstream_element(parsed, raw if canonical else None)
        if encoded is not None:
            await self._send_client(encoded)

    async def _upstream_element(self, element: Any, encoded_already: bytes | None = None) -> bytes | None:
        """The bytes to relay to the client for one upstream element, or None to drop it.

        `encoded_already` is `jsonrpc.encode(element)` when the caller has it (see `parse_canonical`).
        """
        try:
            env = jsonrpc.classify(element)
        except MessageError as exc:
            log.error("upstream message dropped: %s", exc.message)
            if exc.message_id is not None and exc.message_id in self._pending:
                unanswered = self._pending.pop(exc.message_id)
                await self._settle(unanswered, refund=False)  # no failure could be read: it counts
                return self._unrelayable(unanswered, exc.message_id)
            return None
        if env.kind != "response":
            if env.method == "notifications/tools/list_changed":
                self.schemas = {}
                self._listing_complete = False
                self.pins.forget()
            return encoded_already or self._encode_upstream(env)
        message_id = env.id
        if isinstance(message_id, str) and message_id in self._own_waiting:
            future = self._own_waiting.pop(message_id)
            if not future.done():
                future.set_result(env.obj)
            return None
        pending = None
        if message_id is not None:
            pending = self._pending.pop(message_id, None)
            if pending is None and self._cancelled_calls:
                pending = self._cancelled_calls.pop(message_id, None)  # a cancelled call's late answer
        obj = env.obj
        result = obj.get("result")
        listing = pending is not None and pending.method == "tools/list"
        if (listing and "result" in obj) or (isinstance(result, dict) and "tools" in result):
            # Every listing is filtered, whatever it answers: an answer can outlive the tracking
            # of its request (a cancelled or reused id, a late answer after a transport error).
            filtered = self._filter_listing(result, learn=listing)
            if filtered is None:
                log.error("upstream tools/list result is malformed; answered with an error")
                if pending is not None and pending.method == "tools/call":
                    await self._settle(pending, refund=False)
                    assert message_id is not None  # it named a pending request
                    return self._unrelayable(pending, message_id)
                return jsonrpc.encode_error(
                    jsonrpc.UPSTREAM_ERROR, "the MCP server sent a malformed tools/list result", message_id
                )
            obj = {**obj, "result": filtered}
            encoded_already = None
        if encoded_already is None:
            try:
                encoded_already = jsonrpc.encode(obj)
            except MessageError as exc:
                log.error("upstream response replaced by an error: %s", exc.message)
                if pending is None:
                    return None
                await self._settle(pending, refund=False)
                assert message_id is not None  # it named a pending request
                return self._unrelayable(pending, message_id)
        if pending is not None and pending.reservation is not None:
            # Only the server's own word that the tool failed gives the quota back.
            refund = pending.refundable and isinstance(result, dict) and result.get("isError") is True
            await self._settle_reservation(pending.reservation, refund)
        return encoded_already

    @staticmethod
    def _unrelayable(pending: _Pending, message_id: MessageId) -> bytes:
        """The error a client gets for an answer the proxy could not relay (the call stays counted)."""
        message = "the MCP server sent an invalid response"
        if pending.method == "tools/call":
            message += "; the tool may have run"
        return jsonrpc.encode_error(jsonrpc.UPSTREAM_ERROR, message, message_id)

    def _encode_upstream(self, env: Envelope) -> bytes | None:
        try:
            return jsonrpc.encode(env.obj)
        except MessageError as exc:
            log.error("upstream message dropped: %s", exc.message)
            return None

    def _filter_listing(self, result: Any, learn: bool = True) -> dict[str, Any] | None:
        """The result without hidden (or malformed) tools, every other field kept; None if malformed.

        `learn`: remember the tools' input schemas (only from answers known to be `tools/list`'s).
        """
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            return None
        engine = self.engine
        kept: list[Any] = []
        for tool in result["tools"]:
            if not isinstance(tool, dict) or not isinstance(name := tool.get("name"), str):
                log.warning("upstream listed a tool without a string name; dropped")
                continue
            if learn:
                self.schemas[name] = ToolSchema.learn(tool.get("inputSchema"))
            shown = self.pins.shown(tool, name, engine.pins.get(name), learn)
            if self.shadow or (shown and not engine.hides(name)):
                kept.append(tool)
        return {**result, "tools": kept}

    async def _settle(self, pending: _Pending, refund: bool) -> None:
        if pending.reservation is not None:
            await self._settle_reservation(pending.reservation, refund)

    async def _settle_reservation(self, reservation: Reservation, refund: bool) -> None:
        try:
            if refund:
                await self.store.rollback(reservation)
            else:
                await self.store.commit(reservation)
        except StateError as exc:
            log.error(
                "counter store failed to %s a reservation: %s", "roll back" if refund else "commit", exc
            )

    # -- the proxy's own requests --------------------------------------------------------------

    async def _fetch_schemas(self) -> None:
        """List every page of the upstream's tools with the proxy's own request ids; never relayed."""
        async with self._fetch_lock:
            if self._listing_complete or self._upstream_gone:
                return
            cursor: str | None = None
            for _ in range(SCHEMA_FETCH_MAX_PAGES):
                self._own_counter += 1
                own_id = f"{self._own_prefix}{self._own_counter}"
                future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
                self._own_waiting[own_id] = future
                params: dict[str, Any] = {"cursor": cursor} if cursor is not None else {}
                await self._send_upstream(
                    jsonrpc.encode({"jsonrpc": "2.0", "id": own_id, "method": "tools/list", "params": params})
                )
                # A timer, not asyncio.wait_for: this may run outside a task (see FdChannel.pump).
                timer = asyncio.get_running_loop().call_later(self._fetch_timeout, _expire, future)
                try:
                    response = await future
                except (TimeoutError, ConnectionError) as exc:
                    self._own_waiting.pop(own_id, None)
                    log.error("could not list the upstream's tools: %s", type(exc).__name__)
                    return
                finally:
                    timer.cancel()
                result = response.get("result")
                if self._filter_listing(result) is None:
                    log.error("upstream tools/list answer unusable; tool schemas stay unknown")
                    return
                assert isinstance(result, dict)
                next_cursor = result.get("nextCursor")
                if not isinstance(next_cursor, str):
                    self._listing_complete = True
                    return
                cursor = next_cursor

    # -- end of session ----------------------------------------------------------------------

    async def client_frame_too_large(self, exc: FrameTooLarge) -> None:
        """A client message over the size limit was dropped: answer it, with its id when it shows."""
        message_id = jsonrpc.id_from_edges(exc.head, exc.tail)
        log.warning("client message dropped: %s", exc)
        await self._send_client(
            jsonrpc.encode_error(
                jsonrpc.INVALID_REQUEST, f"message exceeds the {exc.limit}-byte limit", message_id
            )
        )

    async def upstream_frame_too_large(self, exc: FrameTooLarge) -> None:
        """An upstream message over the size limit was dropped: fail the request it answered.

        The answer cannot be read, so whether the tool succeeded is unknown: a call's counters
        stay committed (fail closed), and the client gets an error for its id instead of
        waiting for an answer that will never come.
        """
        message_id = jsonrpc.id_from_edges(exc.head, exc.tail)
        log.error("upstream message dropped: %s", exc)
        if message_id is None:
            return
        if isinstance(message_id, str) and message_id in self._own_waiting:
            future = self._own_waiting.pop(message_id)
            if not future.done():
                future.set_exception(ConnectionError("the server's answer exceeded the size limit"))
            return
        await self._settle_cancelled(message_id)
        pending = self._pending.pop(message_id, None)
        if pending is None:
            return
        await self._settle(pending, refund=False)
        await self._send_client(
            jsonrpc.encode_error(
                jsonrpc.UPSTREAM_ERROR,
                f"the MCP server's answer exceeded the {exc.limit}-byte limit and was dropped"
                + ("; the tool may have run" if pending.method == "tools/call" else ""),
                message_id,
            )
        )

    async def upstream_closed(self, reason: str = SERVER_EXITED) -> None:
        """The upstream is gone (`reason` says how): every pending request gets an error.

        Every call in flight stays counted: the tool may have run, and a client could otherwise
        get its quota back by hanging up mid-call.
        """
        self._upstream_gone = reason
        await self.approvals.close(reason)  # held calls never reached the server: they get errors
        for future in self._own_waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("upstream closed"))
        self._own_waiting.clear()
        cancelled, self._cancelled_calls = self._cancelled_calls, collections.OrderedDict()
        pending, self._pending = self._pending, {}
        for entry in (*cancelled.values(), *pending.values()):
            await self._settle(entry, refund=False)
        for message_id, entry in pending.items():
            message = f"{reason} before this request was answered"
            if entry.method == "tools/call":
                message += "; the tool may have run"
            try:
                await self._send_client(jsonrpc.encode_error(jsonrpc.UPSTREAM_ERROR, message, message_id))
            except ConnectionError:
                return

    @property
    def pending_count(self) -> int:
        return len(self._pending)


def _refuse_look_alike(method: str, message_id: MessageId | None) -> None:
    """MessageError if `method` imitates a policed method: a lenient server could run it as
    `tools/call` (unchecked, uncounted) or `tools/list` (hidden tools shown)."""
    imitated = jsonrpc.imitated_method(method)
    if imitated is not None:
        raise MessageError(jsonrpc.METHOD_NOT_FOUND, f"method must be exactly '{imitated}'", message_id)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
