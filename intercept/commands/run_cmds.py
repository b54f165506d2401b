"""`intercept run` (the enforcement proxy) and `intercept status` (what the proxies did).

`run_proxy(options)` does the work and returns the exit status; the click command only
parses options. Exit statuses: the MCP server's own status once it ran (128+N if a signal
ended it), 1 for an invalid policy, a policy that cannot be watched for reload or a state store
that cannot be opened, 2 for a usage error, 127 if the server command cannot be started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from intercept.audit import DEFAULT_EVENTS_DIR, AuditLog
from intercept.engine import Engine
from intercept.http_run import HttpSides, ProxyContext, event_loop_factory, run_http, upstream_display
from intercept.policy import load_policy
from intercept.proxy import Router, relay
from intercept.reload import PolicyWatch, ReloadUnavailable, watch_policy
from intercept.state import StateOptions, open_store
from intercept.state.base import CounterStore, StateError
from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES
from intercept.transport.http import limits
from intercept.transport.stdio import CHILD_EXIT_GRACE_SECONDS, StdioChild, StdioSelf
from intercept.util.errors import InputError
from intercept.util.fsutil import open_private

log = logging.getLogger("intercept.run")

EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_CANNOT_START = 127
_SECONDS = click.FloatRange(0, 1e6, min_open=True)
LOG_FORMAT = "%(asctime)s intercept[%(process)d] %(levelname)s %(name)s: %(message)s"


@dataclass
class RunOptions:
    """Everything `intercept run` was told. Transports added later add fields here."""

    config: Path
    command: list[str]
    state: StateOptions = field(default_factory=StateOptions)
    fail_open: bool = False
    audit_log: Path | None = None
    audit: bool = True
    watch: bool = True
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    http: HttpSides = field(default_factory=HttpSides)
    exit_grace: float = CHILD_EXIT_GRACE_SECONDS
    """Seconds the server gets to exit after its input closes, and again after SIGTERM."""


def configure_logging(level: str, log_file: Path | None) -> None:
    """Logs go to stderr or `log_file`, never stdout (stdout carries only protocol messages).

    A log file is created 0600 and must be this user's alone, like the proxy's other files;
    OSError (naming the file and the fix) otherwise.
    """
    if log_file is not None:
        fd = open_private(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, "log file")
        stream = open(fd, "a", encoding="utf-8", errors="backslashreplace", buffering=1)  # noqa: SIM115
        handler: logging.Handler = logging.StreamHandler(stream)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("intercept")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def _fail(message: str, status: int) -> int:
    click.echo(f"intercept run: {message}", err=True)
    return status


def run_proxy(options: RunOptions) -> int:
    """Run the proxy until the MCP server exits; return the exit status for the process."""
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(options.http)) as runner:
            return runner.run(_run(options))
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Exception as exc:  # the last line of defence: a message, never a traceback
        log.debug("proxy failed", exc_info=True)
        # The type only: an unexpected exception's text may quote a message being relayed.
        return _fail(f"internal error: {type(exc).__name__} (run with --log-level debug for details)", 1)


async def _run(options: RunOptions) -> int:
    # Watching starts before the policy is read, so an edit made meanwhile is not missed.
    try:
        watch = PolicyWatch.open(options.config) if options.watch else None
    except ReloadUnavailable as exc:
        return _fail(str(exc), EXIT_INVALID)
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
        return _fail(
            f"{options.config}: policy is invalid ({len(exc.errors)} errors):\n{lines}", EXIT_INVALID
        )
    try:
        store = open_store(options.state)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except StateError as exc:
        return _fail(str(exc), EXIT_INVALID)
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
            return _fail(f"cannot open audit log: {exc.strerror or exc}", EXIT_INVALID)
    if options.http.active:
        status = await _serve_http(options, engine, store, audit, watch)
    else:
        try:
            child = await StdioChild.start(
                options.command, os.environ, options.max_message_bytes, options.exit_grace
            )
        except OSError as exc:
            await store.close()
            return _fail(
                f"cannot start MCP server {options.command[0]!r}: {exc.strerror or exc}", EXIT_CANNOT_START
            )
        status = await _serve(options, engine, store, audit, child, watch)
    await store.close()
    if audit is not None:
        audit.shutdown(status)
        audit.close()
    return status


async def _serve_http(
    options: RunOptions,
    engine: Engine,
    store: CounterStore,
    audit: AuditLog | None,
    watch: PolicyWatch | None,
) -> int:
    """`--upstream` and/or `--listen`: see `intercept.http_run`."""
    if audit is not None:
        audit.startup(
            str(options.config),
            engine.policy.summary().render(),
            upstream_display(options.http, options.command),
            str(getattr(store, "display", "state")),
        )
    context = ProxyContext(
        engine, store, audit, options.fail_open, options.config, options.max_message_bytes, watch
    )
    try:
        return await run_http(options.http, options.command, context)
    except OSError as exc:
        return _fail(str(exc), EXIT_INVALID)


async def _serve(
    options: RunOptions,
    engine: Engine,
    store: CounterStore,
    audit: AuditLog | None,
    child: StdioChild,
    watch: PolicyWatch | None,
) -> int:
    client = StdioSelf(options.max_message_bytes)
    await client.open()
    state_display = str(getattr(store, "display", options.state.spec))
    if audit is not None:
        audit.startup(
            str(options.config),
            engine.policy.summary().render(),
            Path(options.command[0]).name,
            state_display,
        )
    router = Router(
        engine,
        store,
        send_client=client.send,
        send_upstream=child.send,
        audit=audit,
        fail_open=options.fail_open,
    )
    # Forwarding lasts until the child has exited: a signal that arrived while the proxy waits
    # for it would otherwise end the proxy and leave the child (in its own session) running.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, child.forward_signal, signum)

    def apply(new_engine: Engine) -> None:
        router.engine = new_engine

    def report(ok: bool, detail: str) -> None:
        if audit is not None:
            audit.reload(ok, str(options.config), detail)

    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_policy(watch, apply, report, stop)) if watch is not None else None
    log.info(
        "proxying %s with policy %s (state: %s)", Path(options.command[0]).name, options.config, state_display
    )
    try:
        try:
            await relay(router, client, child)
        finally:
            stop.set()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            status = await child.wait()
        await client.close()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return status


@click.command(context_settings={"allow_interspersed_args": False})
@click.option(
    "-c",
    "--config",
    "config",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, readable=False),
    help="Policy file to enforce (reloaded when it changes).",
)
@click.option(
    "--state",
    "state",
    default="sqlite",
    show_default=True,
    metavar="BACKEND",
    help="Counter store: sqlite (durable, shared by proxies on this machine), memory, "
    "or redis://[user:password@]host:port/db (shared by proxies on any host).",
)
@click.option(
    "--state-prefix",
    default=None,
    metavar="PREFIX",
    help="Key prefix in a shared store such as Redis (default: intercept); proxies with the same "
    "prefix share limits.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory of the SQLite state (default ~/.intercept/state).",
)
@click.option(
    "--state-fail-mode",
    type=click.Choice(["closed", "open"]),
    default="closed",
    show_default=True,
    help="When the counter store fails: deny calls (closed) or admit them uncounted (open).",
)
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Audit log file (default ~/.intercept/events/events-<day>.jsonl).",
)
@click.option("--no-audit", is_flag=True, help="Write no audit log.")
@click.option("--no-watch", is_flag=True, help="Do not reload the policy when the file changes.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="Diagnostics level (diagnostics never go to stdout).",
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write diagnostics to this file instead of stderr.",
)
@click.option(
    "--max-message-bytes",
    type=click.IntRange(1024, 1 << 30),
    default=DEFAULT_MAX_MESSAGE_BYTES,
    show_default=True,
    help="Largest JSON-RPC message accepted from either side.",
)
@click.option(
    "--upstream",
    metavar="URL",
    help="Streamable HTTP MCP server to proxy to, instead of a server COMMAND.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="HTTP header sent on every request to --upstream (repeatable), e.g. 'Authorization: Bearer ...'.",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Serve MCP clients over Streamable HTTP at http://HOST:PORT/mcp instead of stdio "
    "(loopback unless you name another address).",
)
@click.option(
    "--client-token",
    envvar="INTERCEPT_CLIENT_TOKEN",
    metavar="TOKEN",
    help="With --listen: require 'Authorization: Bearer TOKEN' from clients (or set INTERCEPT_CLIENT_TOKEN).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="HOST:PORT",
    help="With --listen: another Host header value to accept (loopback names are always accepted).",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    multiple=True,
    metavar="ORIGIN",
    help="With --listen: a browser Origin to accept besides loopback origins, e.g. https://app.example.",
)
@click.option(
    "--max-sessions",
    type=click.IntRange(1, 100_000),
    metavar="N",
    help=f"With --listen: client sessions (each with its own server process) open at once; "
    f"another initialize gets 503 (default {limits.DEFAULT_MAX_SESSIONS}).",
)
@click.option(
    "--session-idle-timeout",
    type=_SECONDS,
    metavar="SECONDS",
    help="With --listen: end a session (and stop its server process) when no request of it has been "
    f"in progress for this long (default {limits.DEFAULT_SESSION_IDLE_TIMEOUT:g}).",
)
@click.option(
    "--header-timeout",
    type=_SECONDS,
    metavar="SECONDS",
    help="With --listen: time a client has to send a request's line and headers "
    f"(default {limits.DEFAULT_HEADER_TIMEOUT:g}).",
)
@click.option(
    "--body-timeout",
    type=_SECONDS,
    metavar="SECONDS",
    help="With --listen: time a client has to send a request's body "
    f"(default {limits.DEFAULT_BODY_TIMEOUT:g}).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1, 100_000),
    metavar="N",
    help=f"With --listen: client connections open at once (default {limits.DEFAULT_MAX_CONNECTIONS}).",
)
@click.option(
    "--max-buffered-bytes",
    type=click.IntRange(1024, 1 << 40),
    metavar="BYTES",
    help="With --listen: request bytes held across all connections before requests get 503 "
    "(default 64 MiB, or 4 x --max-message-bytes if more).",
)
@click.argument("command", nargs=-1, required=False, type=click.UNPROCESSED)
def run(
    config: Path,
    state: str,
    state_dir: Path | None,
    state_fail_mode: str,
    audit_log: Path | None,
    no_audit: bool,
    no_watch: bool,
    log_level: str,
    log_file: Path | None,
    max_message_bytes: int,
    state_prefix: str | None,
    command: tuple[str, ...],
    **transport: Any,
) -> None:
    """Run an MCP server (COMMAND, after `--`) behind the policy in CONFIG.

    Example: intercept run -c policy.yaml -- npx -y @modelcontextprotocol/server-everything stdio
    """
    try:
        configure_logging(log_level, log_file)
    except OSError as exc:
        message = f"cannot open log file {log_file}: {exc.strerror}" if exc.strerror else str(exc)
        sys.exit(_fail(message, EXIT_INVALID))
    source = click.get_current_context().get_parameter_source("client_token")
    if transport.get("listen") is None and source is click.core.ParameterSource.ENVIRONMENT:
        transport["client_token"] = None  # an exported INTERCEPT_CLIENT_TOKEN only matters to --listen
    try:
        http = HttpSides.from_cli(has_command=bool(command), max_message_bytes=max_message_bytes, **transport)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    options = RunOptions(
        config=config,
        command=list(command),
        state=StateOptions(spec=state, state_dir=state_dir, prefix=state_prefix),
        fail_open=state_fail_mode == "open",
        audit_log=audit_log,
        audit=not no_audit,
        watch=not no_watch,
        max_message_bytes=max_message_bytes,
        http=http,
    )
    sys.exit(run_proxy(options))


@click.command()
@click.option(
    "--audit-log",
    type=click.Path(path_type=Path),
    help="Audit log file or directory (default ~/.intercept/events).",
)
@click.option(
    "-n",
    "--recent",
    type=click.IntRange(1, 10000),
    default=20,
    show_default=True,
    help="How many recent calls to show.",
)
def status(audit_log: Path | None, recent: int) -> None:
    """Show recent tool calls, denials by rule, and the proxy instances seen in the audit log."""
    from intercept.audit import DEFAULT_EVENTS_DIR
    from intercept.status import log_files, read_events, render, summarise

    path = (audit_log or DEFAULT_EVENTS_DIR).expanduser()
    files = log_files(path)
    if not files:
        click.echo(f"no audit log at {path} (run `intercept run` first, or pass --audit-log)", err=True)
        sys.exit(EXIT_INVALID)
    try:
        report = summarise(read_events(files), recent)
    except OSError as exc:
        click.echo(f"cannot read audit log: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(render(report), nl=False)


COMMANDS = [run, status]
