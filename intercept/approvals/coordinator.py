"""Holding a `require_approval` call until a human decides, without holding up the session.

`ApprovalService` is shared by every session of one `intercept run`: the approval store (opened
on first use), the audit log, `--approvals auto|cli`, and what the operator is told on stderr.
`SessionApprovals` belongs to one `Router`: it learns from the client's `initialize` whether the
client can ask its user (`capabilities.elicitation`), and runs each held call in a task of its
own, so the router goes on with the session's other messages meanwhile.

A held call gets one approval record bound to it (`model.ApprovalRequest`). With `auto` and a
client that declared form elicitation, the proxy asks the client (`elicitation/create`, with
its own unguessable request ids; the answer is written to the store). Whatever the client does,
the store is polled, so `intercept approvals grant|deny` decides too. At the timeout the record
is expired atomically; a grant that lost that race is refused. A granted record is consumed
(`used`) only if it still binds this call, and only if the policy has not changed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TextIO

from intercept.approvals import elicit
from intercept.approvals.model import ApprovalRequest, arguments_hash, new_approval_id, policy_version
from intercept.approvals.store import ApprovalStore, MemoryApprovals
from intercept.engine import ApprovalNeed, Denial, ToolCall
from intercept.policy import Policy
from intercept.protocol import jsonrpc
from intercept.protocol.jsonrpc import Envelope, MessageError, MessageId
from intercept.state.base import StateError

log = logging.getLogger("intercept.approvals")

Mode = Literal["auto", "cli"]
Send = Callable[[bytes], Awaitable[None]]
Held = Denial | bool | None
"""What the router is told of a call: None (not held), True (approved), or the Denial that ends it."""
Answer = tuple[bytes | None, bytes | None]
ToolsCall = Callable[[Envelope, MessageId, bytes, bool, Held], Awaitable[Answer]]
POLL_SECONDS = 0.25
TIMED_OUT = "approval timed out"
STORE_DOWN = "the approval store is unavailable, so the call is refused (fail closed)"
NO_APPROVER = (
    "approval required, but no one can be asked: the client cannot show a question (no elicitation) "
    "and `intercept approvals` cannot reach --state memory (use --state sqlite or redis)"
)


class ApprovalAudit(Protocol):
    def approval(
        self,
        what: str,
        approval_id: str,
        tool: str,
        rule: str,
        arguments: Mapping[str, Any],
        detail: str = "",
    ) -> None: ...


class ApprovalService:
    """What every session of one proxy shares (see the module docstring)."""

    def __init__(
        self,
        open_store: Callable[[], ApprovalStore],
        *,
        audit: ApprovalAudit | None = None,
        mode: Mode = "auto",
        server: str = "the MCP server",
        cli_options: str = "",
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.time,
        stderr: TextIO | None = None,
    ) -> None:
        self._open_store = open_store
        self._store: ApprovalStore | None = None
        self.audit = audit
        self.mode = mode
        self.server = server
        self.cli_options = cli_options
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._stderr = stderr
        self._versions: tuple[Policy, str] | None = None

    @classmethod
    def in_memory(cls) -> ApprovalService:
        return cls(MemoryApprovals)

    def store(self) -> ApprovalStore:
        """The store, opened on first use (StateError or ValueError if it cannot be)."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def version(self, policy: Policy) -> str:
        cached = self._versions
        if cached is None or cached[0] is not policy:
            cached = self._versions = (policy, policy_version(policy))
        return cached[1]

    def grant_command(self, approval_id: str, verb: str = "grant") -> str:
        extra = f" {self.cli_options}" if self.cli_options else ""
        return f"intercept approvals {verb} {approval_id}{extra}"

    def announce(self, request: ApprovalRequest) -> None:
        """Tell the operator on stderr (never stdout: it carries protocol messages only)."""
        stream = self._stderr or sys.stderr
        with contextlib.suppress(OSError, ValueError):
            stream.write(
                f"intercept: call to tool {elicit.shown(request.tool, 200)} held for approval "
                f"{request.id} (rule: {request.rule}), expires in {request.expires - request.created:.0f} s; "
                f"grant: {self.grant_command(request.id)}; deny: {self.grant_command(request.id, 'deny')}\n"
            )
            stream.flush()

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()


@dataclass(slots=True)
class HeldCall:
    """A held `tools/call`, and how to hand it back to the router once decided."""

    call: ToolCall
    need: ApprovalNeed
    tools_call: ToolsCall
    env: Envelope
    message_id: MessageId
    encoded: bytes
    refundable: bool


class SessionApprovals:
    """The approvals of one client session (see the module docstring)."""

    def __init__(
        self,
        service: ApprovalService | None,
        send_client: Send,
        send_upstream: Send,
        policy: Callable[[], Policy],
    ) -> None:
        self.service = service or ApprovalService.in_memory()
        self._send_client = send_client
        self._send_upstream = send_upstream
        self._policy = policy
        self.session = secrets.token_hex(16)
        self._prefix = f"intercept-approval-{secrets.token_hex(12)}-"
        self._counter = 0
        self.elicitation = False
        self._held: dict[MessageId, asyncio.Task[None]] = {}
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    # -- what the router tells it ----------------------------------------------------------

    def client_initialized(self, params: Any) -> None:
        """Remember whether the client can ask its user a form question."""
        caps = params.get("capabilities") if isinstance(params, dict) else None
        elicitation = caps.get("elicitation") if isinstance(caps, dict) else None
        # `elicitation: {}` means form mode; a client naming modes must name `form`.
        self.elicitation = isinstance(elicitation, dict) and (
            not elicitation or isinstance(elicitation.get("form"), dict)
        )

    def observe(self, env: Envelope) -> bool:
        """See every client message first; True if it is this module's alone (not to be forwarded).

        That is an answer to the proxy's own question, or the cancellation of a held call (never
        forwarded, so the server must not hear of it). A request reusing a held call's id is refused.
        """
        message_id = env.id
        if env.kind == "response":
            if not (isinstance(message_id, str) and message_id.startswith(self._prefix)):
                return False
            future = self._waiting.pop(message_id, None)
            if future is not None and not future.done():
                future.set_result(env.obj)
            return True
        if env.kind == "request":
            if message_id in self._held:
                raise MessageError(
                    jsonrpc.INVALID_REQUEST, "request id is already in use by a pending request", message_id
                )
            if env.method == "initialize":
                self.client_initialized(env.obj.get("params"))
            return False
        if env.method == "notifications/cancelled":
            params = env.obj.get("params")
            request_id = params.get("requestId") if isinstance(params, dict) else None
            task = self._held.pop(request_id, None) if isinstance(request_id, str | int) else None
            if task is not None:
                task.cancel()
                return True
        return False

    def hold(
        self,
        call: ToolCall,
        need: ApprovalNeed,
        tools_call: ToolsCall,
        env: Envelope,
        message_id: MessageId,
        encoded: bytes,
        refundable: bool,
    ) -> None:
        """Hold a call the router decided needs approval; it is handed back to `tools_call` once decided."""
        held = HeldCall(call, need, tools_call, env, message_id, encoded, refundable)
        self._held[message_id] = asyncio.get_running_loop().create_task(
            self._run(held), name=f"approval {call.name}"
        )

    async def close(self, reason: str) -> None:
        """The session is ending: every held call is answered with an error, none runs."""
        held, self._held = self._held, {}
        for task in held.values():
            task.cancel()
        await asyncio.gather(*held.values(), return_exceptions=True)
        for message_id in held:
            with contextlib.suppress(ConnectionError):
                await self._send_client(
                    jsonrpc.encode_error(
                        jsonrpc.UPSTREAM_ERROR, f"{reason} before this request was answered", message_id
                    )
                )

    # -- a held call ------------------------------------------------------------------------

    async def _run(self, held: HeldCall) -> None:
        try:
            await self._decide_held(held)
        except (ConnectionError, MessageError) as exc:  # the client or server went away meanwhile
            log.warning("a held call could not be answered: %s", type(exc).__name__)
        finally:
            if self._held.get(held.message_id) is asyncio.current_task():
                del self._held[held.message_id]

    async def _decide_held(self, held: HeldCall) -> None:
        try:
            denial = await self._obtain(held)
        except StateError as exc:
            log.error("approval store failed: %s", exc)
            denial = Denial(held.need.rule, STORE_DOWN)
        if self._held.get(held.message_id) is asyncio.current_task():
            forward, reply = await held.tools_call(
                held.env, held.message_id, held.encoded, held.refundable, denial or True
            )
            if forward is not None:
                await self._send_upstream(forward)
            if reply is not None:
                await self._send_client(reply)

    async def _obtain(self, held: HeldCall) -> Denial | None:
        service, rule, call = self.service, held.need.rule, held.call
        try:
            store = service.store()
        except (StateError, ValueError) as exc:
            log.error("cannot open the approval store: %s", exc)
            return Denial(rule, STORE_DOWN)
        ask_client = self.elicitation and service.mode == "auto"
        if not ask_client and not store.shared:
            return Denial(rule, NO_APPROVER)
        now = service.clock()
        request = ApprovalRequest(
            new_approval_id(),
            call.name,
            arguments_hash(call.arguments),
            service.version(self._policy()),
            self.session,
            rule,
            service.server,
            elicit.summary(call.arguments),
            now,
            now + held.need.timeout,
        )
        await store.create(request)
        self._audit("requested", request, call, service.grant_command(request.id))
        service.announce(request)
        wake = asyncio.Event()
        asking = (
            asyncio.get_running_loop().create_task(self._ask(store, request, wake)) if ask_client else None
        )
        try:
            status = await self._wait(store, request, wake, call)
        finally:
            if asking is not None:
                asking.cancel()
                await asyncio.gather(asking, return_exceptions=True)
        if status == "granted":
            self._audit("granted", request, call)
            if service.version(self._policy()) != request.policy_version:
                return Denial(rule, "the policy changed while the call awaited approval; make the call again")
            if not await store.consume(request):
                return Denial(rule, "the approval could not be used")
            return None
        if status == "denied":
            self._audit("denied", request, call)
            return Denial(rule, "approval denied")
        return Denial(rule, TIMED_OUT)

    async def _wait(
        self, store: ApprovalStore, request: ApprovalRequest, wake: asyncio.Event, call: ToolCall
    ) -> str:
        """Poll until the approval is decided or expires; its final status."""
        clock = self.service.clock
        while True:
            current = await store.get(request.id)
            status = current.status if current is not None else "expired"
            if status != "pending":
                return status
            remaining = request.expires - clock()
            if remaining <= 0:
                if await store.expire(request.id):
                    self._audit("expired", request, call)
                    return "expired"
                continue  # decided just now: read it again
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(self.service.poll_seconds, remaining))

    async def _ask(self, store: ApprovalStore, request: ApprovalRequest, wake: asyncio.Event) -> None:
        """Ask the client (`elicitation/create`) and write its user's answer to the store."""
        self._counter += 1
        own_id = f"{self._prefix}{self._counter}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[own_id] = future
        message = elicit.question(
            request.server,
            request.tool,
            request.rule,
            request.id,
            request.expires - request.created,
            request.summary,
        )
        params = elicit.elicitation_params(message)
        try:
            await self._send_client(
                jsonrpc.encode(
                    {"jsonrpc": "2.0", "id": own_id, "method": "elicitation/create", "params": params}
                )
            )
            response = await future
        except asyncio.CancelledError:
            if self._waiting.pop(own_id, None) is not None:  # still open at the client: withdraw it
                note = {"requestId": own_id, "reason": "the approval was decided or timed out"}
                with contextlib.suppress(Exception):
                    await self._send_client(
                        jsonrpc.encode(
                            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": note}
                        )
                    )
            raise
        except (ConnectionError, jsonrpc.MessageError):
            self._waiting.pop(own_id, None)
            return
        answer = elicit.approved(response.get("result"))
        if answer is None:
            log.warning("the client could not ask its user about approval %s", request.id)
            if store.shared:
                return  # `intercept approvals` can still decide it
            answer = False
        await store.decide(request.id, "granted" if answer else "denied", self.service.clock())
        wake.set()

    def _audit(self, what: str, request: ApprovalRequest, call: ToolCall, detail: str = "") -> None:
        if self.service.audit is not None:
            self.service.audit.approval(what, request.id, request.tool, request.rule, call.arguments, detail)
