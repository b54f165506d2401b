"""`intercept status` as a click command: summarise what the proxies wrote to the audit log.

The reading and summarising is `intercept.status`; this module only parses options and exits 1
when there is no audit log or it cannot be read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from intercept.audit import DEFAULT_EVENTS_DIR
from intercept.status import log_files, read_events, render, summarise

EXIT_UNREADABLE = 1


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
    path = (audit_log or DEFAULT_EVENTS_DIR).expanduser()
    files = log_files(path)
    if not files:
        click.echo(f"no audit log at {path} (run `intercept run` first, or pass --audit-log)", err=True)
        sys.exit(EXIT_UNREADABLE)
    try:
        report = summarise(read_events(files), recent)
    except OSError as exc:
        click.echo(f"cannot read audit log: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    click.echo(render(report), nl=False)


COMMANDS = [status]
