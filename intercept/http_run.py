"""`intercept run` when either side speaks Streamable HTTP: `--upstream URL` and/or `--listen HOST:PORT`.

Three shapes, one router each per client session, so enforcement is identical on every path:

* stdio client -> HTTP upstream (`--upstream`): one `Router` between `StdioSelf` and `HttpUpstream`;
* HTTP clients -> stdio child (`--listen ... -- <cmd>`): every listener session starts its own child;
  2026-07-28 stateless requests (no session) share one child, multiplexed (`shared_child`);
* HTTP clients -> HTTP upstream (`--listen ... --upstream URL`): every session opens its own
  upstream session.

The stdio-only shape stays in `intercept.commands.run_cmds`; this module only adds the others.
These shapes run on uvloop where it is installed: its event loop halves the loop's own cost per
HTTP exchange (BENCHMARKS.md, "Streamable HTTP and Redis").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from intercept.audit import AuditLog
from intercept.engine import Engine
from intercept.protocol.mcp_headers import parse_header_option
from intercept.proxy import Router, relay
from intercept.reload import PolicyWatch, watch_policy
from intercept.state.base import CounterStore
from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES, MessageChannel
from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.client import HttpUpstream, display_url, env_proxy
from intercept.transport.http.connection import ConnectionPool
from intercept.transport.http.edge import parse_listen
from intercept.transport.http.limits import ListenerLimits, default_buffered_bytes
from intercept.transport.http.listener import HttpListener, ListenerOptions
from intercept.transport.http.serve import serve
from intercept.transport.http.shared_child import SharedChild
from intercept.transport.stdio import StdioChild, StdioSelf

log = logging.getLogger("intercept.run")


@dataclass(frozen=True)
class HttpSides:
    """The HTTP-related `intercept run` options."""

    upstream: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    listen: str | None = None
    client_token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    limits: ListenerLimits = field(default_factory=ListenerLimits)

    @property
    def active(self) -> bool:
        return self.upstream is not None or self.listen is not None

    @classmethod
    def from_cli(
        cls,
        *,
        has_command: bool,
        upstream: str | None,
        headers: tuple[str, ...],
        listen: str | None,
        client_token: str | None,
        allowed_hosts: tuple[str, ...],
        allowed_origins: tuple[str, ...],
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        **limits: float | None,
    ) -> HttpSides:
        """Check the transport options together; ValueError naming the conflict and its fix.

        `limits`: the listener's `ListenerLimits` fields given on the command line (None: default)."""
        if upstream is None and not has_command:
            raise ValueError("give the MCP server command after `--`, or --upstream URL")
        if upstream is not None and has_command:
            raise ValueError("give either --upstream URL or a server command after `--`, not both")
        if upstream is not None and not upstream.lower().startswith(("http://", "https://")):
            raise ValueError(f"--upstream must be an http:// or https:// URL (got {display_url(upstream)!r})")
        if headers and upstream is None:
            raise ValueError("--header applies to --upstream requests; add --upstream URL")
        if listen is None and (client_token or allowed_hosts or allowed_origins):
            raise ValueError("--client-token, --allowed-host and --allowed-origin need --listen HOST:PORT")
        given = {name: value for name, value in limits.items() if value is not None}
        if listen is None and given:
            options = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ValueError(f"{options} need --listen HOST:PORT")
        buffered = given.setdefault("max_buffered_bytes", default_buffered_bytes(max_message_bytes))
        if buffered < max_message_bytes:
            raise ValueError(
                f"--max-buffered-bytes {buffered} is less than --max-message-bytes {max_message_bytes}: "
                "a message of the largest size could never be received; raise it"
            )
        if listen is not None:
            parse_listen(listen)
        return cls(
            upstream=upstream,
            headers=tuple(parse_header_option(h) for h in headers),
            listen=listen,
            client_token=client_token,
            allowed_hosts=allowed_hosts,
            allowed_origins=allowed_origins,
            limits=ListenerLimits(**given),  # type: ignore[arg-type]
        )


@dataclass
class ProxyContext:
    """What every session shares: the policy (swapped on reload), the store, the audit log."""

    engine: Engine
    store: CounterStore
    audit: AuditLog | None
    fail_open: bool
    config: Path
    max_message_bytes: int
    watch: PolicyWatch | None


def event_loop_factory(sides: HttpSides) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for the HTTP shapes when uvloop is installed; None (asyncio's own) otherwise."""
    if not sides.active:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def upstream_display(sides: HttpSides, command: Sequence[str]) -> str:
    return display_url(sides.upstream) if sides.upstream else Path(command[0]).name


async def run_http(sides: HttpSides, command: Sequence[str], ctx: ProxyContext) -> int:
    """Run until the stdio client leaves (`--upstream` only) or a signal arrives (`--listen`)."""
    routers: set[Router] = set()
    stop = asyncio.Event()

    def apply(new_engine: Engine) -> None:
        ctx.engine = new_engine
        for router in routers:
            router.engine = new_engine

    def report(ok: bool, detail: str) -> None:
        if ctx.audit is not None:
            ctx.audit.reload(ok, str(ctx.config), detail)

    watcher = asyncio.create_task(watch_policy(ctx.watch, apply, report, stop)) if ctx.watch else None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if sides.listen is not None:
            return await _listen(sides, command, ctx, routers, stop)
        return await _bridge(sides, ctx, routers, stop)
    finally:
        stop.set()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher


def _new_upstream(
    sides: HttpSides,
    ctx: ProxyContext,
    client: ListenerChannel | None = None,
    pool: ConnectionPool | None = None,
) -> HttpUpstream:
    """A new upstream session; in front of a listener session, its HTTP error statuses pass through."""
    assert sides.upstream is not None
    return HttpUpstream(
        sides.upstream,
        dict(sides.headers),
        max_message_bytes=ctx.max_message_bytes,
        on_error_status=client.note_status if client is not None else None,
        envelope=client.envelope if client is not None else None,
        pool=pool,
    )


class _EnvelopeTap:
    """The stdio client's channel, showing the upstream the 2026-07-28 envelope its requests carry,
    so the proxy's own requests (the schema-learning tools/list) can carry it too."""

    def __init__(self, client: MessageChannel, upstream: HttpUpstream) -> None:
        self._client = client
        self._upstream = upstream
        self.send = client.send
        self.close = client.close

    async def receive(self) -> bytes | None:
        data = await self._client.receive()
        if data is not None:
            self._upstream.learn_envelope(data)
        return data


async def _relay_session(
    ctx: ProxyContext, routers: set[Router], client: MessageChannel, upstream: MessageChannel
) -> None:
    router = Router(
        ctx.engine,
        ctx.store,
        send_client=client.send,
        send_upstream=upstream.send,
        audit=ctx.audit,
        fail_open=ctx.fail_open,
    )
    routers.add(router)
    try:
        await relay(router, client, upstream)
    finally:
        routers.discard(router)


async def _bridge(sides: HttpSides, ctx: ProxyContext, routers: set[Router], stop: asyncio.Event) -> int:
    """stdio client <-> HTTP upstream, until the client closes stdin or a signal arrives."""
    client = StdioSelf(ctx.max_message_bytes)
    await client.open()
    upstream = _new_upstream(sides, ctx)
    log.info("proxying stdio to %s", upstream.display)
    session = asyncio.create_task(_relay_session(ctx, routers, _EnvelopeTap(client, upstream), upstream))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({session, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    # Closing the upstream ends the relay: pending calls get errors and the session is deleted.
    await upstream.close()
    with contextlib.suppress(asyncio.CancelledError):
        await session
    await client.close()
    return 0


async def _listen(
    sides: HttpSides, command: Sequence[str], ctx: ProxyContext, routers: set[Router], stop: asyncio.Event
) -> int:
    address = parse_listen(sides.listen or "")
    if not address.is_loopback and sides.client_token is None:
        log.warning("listening on %s without --client-token: any host that can reach it may connect", address)

    async def start_child() -> StdioChild:
        return await StdioChild.start(command, os.environ, ctx.max_message_bytes)

    # Stateless (2026-07-28) requests in front of a command share one child (see shared_child).
    shared = SharedChild(start_child) if sides.upstream is None else None

    # Stateless requests to an upstream share keep-alive connections: they carry no session, so
    # a connection holds nothing of one client that another could see.
    stateless_pool = (
        ConnectionPool(sides.upstream, connect_timeout=30.0)
        if sides.upstream is not None and env_proxy(sides.upstream) is None
        else None
    )

    async def run_session(channel: ListenerChannel) -> None:
        if sides.upstream is not None:
            pool = stateless_pool if channel.one_shot else None
            await _relay_session(ctx, routers, channel, _new_upstream(sides, ctx, channel, pool))
            return
        if channel.one_shot and shared is not None:
            await _relay_session(ctx, routers, channel, shared.lane(channel.envelope))
            return
        try:
            child = await StdioChild.start(command, os.environ, ctx.max_message_bytes)
        except OSError as exc:
            log.error("cannot start MCP server %r: %s", command[0], exc.strerror or exc)
            return
        try:
            await _relay_session(ctx, routers, channel, child)
        finally:
            await child.close()
            await child.wait()

    listener = HttpListener(
        ListenerOptions(
            address,
            client_token=sides.client_token,
            allowed_hosts=sides.allowed_hosts,
            allowed_origins=sides.allowed_origins,
            max_message_bytes=ctx.max_message_bytes,
            stateless=True,
            limits=sides.limits,
        ),
        run_session,
    )
    started = asyncio.Event()
    log.info("listening on http://%s/mcp", address)
    try:
        await serve(listener, started, stop)
    finally:
        if shared is not None:
            await shared.close()
        if stateless_pool is not None:
            stateless_pool.close()
    return 0
