"""`intercept run` as a click command: parse options, build a `RunOptions`, run it, exit.

`run` turns its arguments into a `RunOptions` (`intercept.runtime.options`) and exits with what
`intercept.runtime.run.run_proxy` returns: the MCP server's own status once it ran (128+N if a
signal ended it), 1 for an invalid policy, a policy that cannot be watched for reload or a state
store that cannot be opened, 2 for a usage error, 127 if the server command cannot be started.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from intercept.pinning import OnDrift
from intercept.runtime import run as runtime
from intercept.runtime.logs import configure_logging
from intercept.runtime.options import EXIT_INVALID, ApprovalMode, HttpSides, RunOptions
from intercept.state import StateOptions
from intercept.transport.base import DEFAULT_MAX_MESSAGE_BYTES
from intercept.transport.http import limits

_SECONDS = click.FloatRange(0, 1e6, min_open=True)


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
@click.option(
    "--shadow",
    is_flag=True,
    help="Deny nothing and count nothing: forward every call and record in the audit log what the "
    "policy would have denied (would_deny).",
)
@click.option(
    "--approvals",
    type=click.Choice(["auto", "cli"]),
    default="auto",
    show_default=True,
    help="How require_approval calls are put to a human: ask the client's user when the client supports "
    "elicitation, else hold them for `intercept approvals` (auto), or always hold them (cli).",
)
@click.option(
    "--on-drift",
    type=click.Choice(["deny", "warn"]),
    default="deny",
    show_default=True,
    help="What happens to a pinned tool whose definition changed: removed from tools/list and its calls "
    "denied (deny), or the drift logged and audited and its calls allowed (warn).",
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
    shadow: bool,
    approvals: ApprovalMode,
    on_drift: OnDrift,
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
        sys.exit(runtime.fail(message, EXIT_INVALID))
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
        shadow=shadow,
        approvals=approvals,
        on_drift=on_drift,
    )
    sys.exit(runtime.run_proxy(options))


COMMANDS = [run]
