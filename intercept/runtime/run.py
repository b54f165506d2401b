"""The composition root of `intercept run`: builds the running proxy from a `RunOptions` and runs it.

`run_proxy(options)` opens, in order, the policy watch (before the policy is read, so an edit
made meanwhile is not missed), the engine, the counter store and the audit log; then starts the
transports of one of four shapes, with one `Router` per client session so enforcement is
identical on every path:

* stdio client -> stdio child (`-- <cmd>`): one router between `StdioSelf` and `StdioChild`;
  SIGINT and SIGTERM are forwarded to the child and the proxy exits with its status;
* stdio client -> HTTP upstream (`--upstream`): one router between `StdioSelf` and
  `HttpUpstream`, until the client closes stdin or a signal arrives;
* HTTP clients -> stdio child (`--listen ... -- <cmd>`): every listener session starts its own
  child; 2026-07-28 stateless requests (no session) share one child, multiplexed (`shared_child`);
* HTTP clients -> HTTP upstream (`--listen ... --upstream URL`): every session opens its own
  upstream session.

Every shape shares the same wiring: a policy reload swaps the engine of every live router, and
the audit log records the start, each reload and the exit status. The HTTP shapes run on uvloop
where it is installed: its event loop halves the loop's own cost per HTTP exchange
(BENCHMARKS.md, "Streamable HTTP and Redis").

Exit statuses: the MCP server's own status once it ran (128+N if a signal ended it), 0 when an
HTTP shape stops, and those of `intercept.runtime.options` for what prevented a start.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from intercept.approvals.coordinator import ApprovalService
from intercept.approvals.store import cli_options, open_approvals
from intercept.audit import DEFAULT_EVENTS_DIR, AuditLog
from intercept.engine import Engine
from intercept.policy import load_policy
from intercept.proxy import Router
from intercept.relay import relay
from intercept.runtime.options import EXIT_CANNOT_START, EXIT_INVALID, EXIT_USAGE, HttpSides, RunOptions
from intercept.runtime.reload import PolicyWatch, ReloadUnavailable, watch_policy
from intercept.shadow import SHADOW_WARNING
from intercept.state import open_store
from intercept.state.base import CounterStore, StateError
from intercept.transport.base import MessageChannel
from intercept.transport.http.channel import ListenerChannel
from intercept.transport.http.client import HttpUpstream, env_proxy
from intercept.transport.http.connection import ConnectionPool
from intercept.transport.http.edge import parse_listen
from intercept.transport.http.listener import HttpListener, ListenerOptions
from intercept.transport.http.serve import serve
from intercept.transport.http.shared_child import SharedChild
from intercept.transport.stdio import StdioChild, StdioSelf
from intercept.util.errors import InputError

log = logging.getLogger("intercept.run")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def fail(message: str, status: int) -> int:
    """Tell the user why `intercept run` stops (on stderr); return the exit status."""
    click.echo(f"intercept run: {message}", err=True)
    return status


def event_loop_factory(sides: HttpSides) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for the HTTP shapes when uvloop is installed; None (asyncio's own) otherwise."""
    if not sides.active:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_proxy(options: RunOptions) -> int:
    """Run the proxy until the MCP server exits (or, over HTTP, until stopped); return the exit status."""
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(options.http)) as runner:
            return runner.run(_run(options))
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Exception as exc:  # the last line of defence: a message, never a traceback
        log.debug("proxy failed", exc_info=True)
        # The type only: an unexpected exception's text may quote a message being relayed.
        return fail(f"internal error: {type(exc).__name__} (run with --log-level debug for details)", 1)


@dataclass
class RunningProxy:
    """What every client session shares: the policy (swapped on reload), the store, the audit log."""

    options: RunOptions
    engine: Engine
    store: CounterStore
    audit: AuditLog | None
    approvals: ApprovalService
    routers: set[Router] = field(default_factory=set)

    def apply(self, engine: Engine) -> None:
        """A reloaded policy: later sessions and every live one use it; counters are untouched."""
        self.engine = engine
        for router in self.routers:
            router.engine = engine

    def report(self, ok: bool, detail: str) -> None:
        if self.audit is not None:
            self.audit.reload(ok, str(self.options.config), detail)

    async def relay_session(self, client: MessageChannel, upstream: MessageChannel) -> None:
        """One client session through its own router, until the upstream side ends."""
        router = Router(
            self.engine,
            self.store,
            send_client=client.send,
            send_upstream=upstream.send,
            audit=self.audit,
            fail_open=self.options.fail_open,
            shadow=self.options.shadow,
            approvals=self.approvals,
            on_drift=self.options.on_drift,
        )
        self.routers.add(router)
        try:
            await relay(router, client, upstream)
        finally:
            self.routers.discard(router)

    @property
    def state_display(self) -> str:
        return self.store.display


async def _run(options: RunOptions) -> int:
    # Watching starts before the policy is read, so an edit made meanwhile is not missed.
    try:
        watch = PolicyWatch.open(options.config) if options.watch else None
    except ReloadUnavailable as exc:
        return fail(str(exc), EXIT_INVALID)
    try:
        return await _run_watched(options, watch)
    finally:
        if watch is not None:
            watch.close()


async def _run_watched(options: RunOptions, watch: PolicyWatch | None) -> int:
    try:
        engine = Engine(load_policy(options.config))
    except InputError as exc:
        lines = "\n".join(f"  - {e.render()}" for e in exc.errors)
        return fail(f"{options.config}: policy is invalid ({len(exc.errors)} errors):\n{lines}", EXIT_INVALID)
    if options.shadow:
        log.warning(SHADOW_WARNING)
    try:
        store = open_store(options.state)
    except ValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    except StateError as exc:
        return fail(str(exc), EXIT_INVALID)
    audit: AuditLog | None = None
    if options.audit:
        try:
            audit = (
                AuditLog(options.audit_log.expanduser())
                if options.audit_log is not None
                else AuditLog.daily(DEFAULT_EVENTS_DIR)
            )
        except OSError as exc:
            await store.close()
            return fail(f"cannot open audit log: {exc.strerror or exc}", EXIT_INVALID)
    approvals = ApprovalService(
        functools.partial(open_approvals, options.state),
        audit=audit,
        mode=options.approvals,
        server=options.http.upstream_display(options.command),
        cli_options=cli_options(options.state),
    )
    proxy = RunningProxy(options, engine, store, audit, approvals)
    if options.http.active:
        status = await _serve(proxy, watch, _http_shape(proxy))
    else:
        try:
            child = await StdioChild.start(
                options.command, os.environ, options.max_message_bytes, options.exit_grace
            )
        except OSError as exc:
            await store.close()
            return fail(
                f"cannot start MCP server {options.command[0]!r}: {exc.strerror or exc}", EXIT_CANNOT_START
            )
        status = await _serve(proxy, watch, _StdioToStdio(proxy, child))
    await approvals.close()
    await store.close()
    if audit is not None:
        audit.shutdown(status)
        audit.close()
    return status


class _Shape(abc.ABC):
    """How one transport combination runs: what a signal does, and the sessions until the end."""

    def on_signal(self, signum: int, stop: asyncio.Event) -> None:
        stop.set()

    @abc.abstractmethod
    async def run(self, stop: asyncio.Event) -> int:
        """Serve until the shape's end (or `stop`); the exit status."""


async def _serve(proxy: RunningProxy, watch: PolicyWatch | None, shape: _Shape) -> int:
    """Run `shape` with hot reload and signal handling around it."""
    options = proxy.options
    if proxy.audit is not None:
        proxy.audit.startup(
            str(options.config),
            proxy.engine.policy.summary().render(),
            options.http.upstream_display(options.command),
            proxy.state_display,
            shadow=options.shadow,
        )
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_policy(watch, proxy.apply, proxy.report, stop)) if watch else None
    loop = asyncio.get_running_loop()
    for signum in SIGNALS:
        loop.add_signal_handler(signum, shape.on_signal, signum, stop)
    try:
        return await shape.run(stop)
    finally:
        stop.set()
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher


class _StdioToStdio(_Shape):
    """stdio client <-> the server command's stdio, until the server has exited."""

    def __init__(self, proxy: RunningProxy, child: StdioChild) -> None:
        self.proxy = proxy
        self.child = child

    def on_signal(self, signum: int, stop: asyncio.Event) -> None:
        # Forwarding lasts until the child has exited: a signal that arrived while the proxy waits
        # for it would otherwise end the proxy and leave the child (in its own session) running.
        self.child.forward_signal(signum)

    async def run(self, stop: asyncio.Event) -> int:
        options, child = self.proxy.options, self.child
        client = StdioSelf(options.max_message_bytes)
        await client.open()
        log.info(
            "proxying %s with policy %s (state: %s)",
            Path(options.command[0]).name,
            options.config,
            self.proxy.state_display,
        )
        try:
            await self.proxy.relay_session(client, child)
        finally:
            stop.set()  # no reload while the server exits
            status = await child.wait()
        await client.close()
        return status


def _http_shape(proxy: RunningProxy) -> _Shape:
    return _Listen(proxy) if proxy.options.http.listen is not None else _StdioToHttp(proxy)


def _new_upstream(
    proxy: RunningProxy, client: ListenerChannel | None = None, pool: ConnectionPool | None = None
) -> HttpUpstream:
    """A new upstream session; in front of a listener session, its HTTP error statuses pass through."""
    sides = proxy.options.http
    assert sides.upstream is not None
    return HttpUpstream(
        sides.upstream,
        dict(sides.headers),
        max_message_bytes=proxy.options.max_message_bytes,
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


class _HttpShape(_Shape):
    """A shape with an HTTP side: it runs until a signal (or its stdio client leaves), and a socket
    that cannot be opened (an address in use, say) stops it with EXIT_INVALID."""

    def __init__(self, proxy: RunningProxy) -> None:
        self.proxy = proxy

    async def run(self, stop: asyncio.Event) -> int:
        try:
            return await self.serve(stop)
        except OSError as exc:
            return fail(str(exc), EXIT_INVALID)

    @abc.abstractmethod
    async def serve(self, stop: asyncio.Event) -> int: ...


class _StdioToHttp(_HttpShape):
    """stdio client <-> HTTP upstream, until the client closes stdin or a signal arrives."""

    async def serve(self, stop: asyncio.Event) -> int:
        proxy = self.proxy
        client = StdioSelf(proxy.options.max_message_bytes)
        await client.open()
        upstream = _new_upstream(proxy)
        log.info("proxying stdio to %s", upstream.display)
        session = asyncio.create_task(proxy.relay_session(_EnvelopeTap(client, upstream), upstream))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({session, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        # Closing the upstream ends the relay: pending calls get errors and the session is deleted.
        await upstream.close()
        with contextlib.suppress(asyncio.CancelledError):
            await session
        await client.close()
        return 0


class _Listen(_HttpShape):
    """HTTP clients <-> a stdio child per session, or an upstream session per session; until a signal."""

    async def serve(self, stop: asyncio.Event) -> int:
        proxy = self.proxy
        sides, command = proxy.options.http, proxy.options.command
        max_message_bytes = proxy.options.max_message_bytes
        address = parse_listen(sides.listen or "")
        if not address.is_loopback and sides.client_token is None:
            log.warning(
                "listening on %s without --client-token: any host that can reach it may connect", address
            )

        async def start_child() -> StdioChild:
            return await StdioChild.start(command, os.environ, max_message_bytes)

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
                await proxy.relay_session(channel, _new_upstream(proxy, channel, pool))
                return
            if channel.one_shot and shared is not None:
                await proxy.relay_session(channel, shared.lane(channel.envelope))
                return
            try:
                child = await start_child()
            except OSError as exc:
                log.error("cannot start MCP server %r: %s", command[0], exc.strerror or exc)
                return
            try:
                await proxy.relay_session(channel, child)
            finally:
                await child.close()
                await child.wait()

        listener = HttpListener(
            ListenerOptions(
                address,
                client_token=sides.client_token,
                allowed_hosts=sides.allowed_hosts,
                allowed_origins=sides.allowed_origins,
                max_message_bytes=max_message_bytes,
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


__all__ = ["RunningProxy", "event_loop_factory", "fail", "run_proxy"]
