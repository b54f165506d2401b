"""`intercept pin`: write a live server's tool definition hashes into a policy, or report drift."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from intercept.commands.policy_cmds import EXIT_INVALID, EXIT_USAGE, config_option, report_invalid
from intercept.pinfile import PinReport, compare, write_pins
from intercept.policy import load_policy
from intercept.protocol.mcp_headers import parse_header_option
from intercept.scan import HttpTarget, ScanError, ScannedTool, StdioTarget, Target, scan, terminal_safe
from intercept.util.errors import InputError
from intercept.util.fsutil import atomic_write_text
from intercept.util.tooldef import DefinitionError, definition_hash

EXIT_DRIFT = 1


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@config_option("Policy file to pin (edited in place; comments and layout are kept).")
@click.option("--check", is_flag=True, help="Only report drift (changed, added, removed); exit 1 on any.")
@click.option("--upstream", help="A Streamable HTTP server at this URL instead of a command.")
@click.option("--header", "headers", multiple=True, help="HTTP header for --upstream, as 'Name: value'.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the server to start and list its tools.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def pin(
    config: Path,
    check: bool,
    upstream: str | None,
    headers: tuple[str, ...],
    timeout: float,
    command: tuple[str, ...],
) -> None:
    """Start the server (after `--`) or connect to --upstream, and pin the policy's tools to their
    current definitions (`pin: sha256:...`).

    Only tools the policy lists get a pin; tools the server lists that the policy does not name are
    reported. With --check nothing is written.

    Example: intercept pin -c policy.yaml -- uvx mcp-server-time
    """
    if bool(upstream) == bool(command):
        raise click.UsageError("give a server command after `--`, or --upstream URL (exactly one)")
    if headers and not upstream:
        raise click.UsageError("--header applies to --upstream; add --upstream URL")
    try:
        policy = load_policy(config)
        text = config.read_text(encoding="utf-8")
    except InputError as exc:
        report_invalid(config, "policy", exc)
        sys.exit(EXIT_INVALID)
    target: Target = (
        HttpTarget(upstream, dict(_header(h) for h in headers)) if upstream else StdioTarget(list(command))
    )
    try:
        tools = scan(target, timeout).tools
    except ScanError as exc:
        click.echo(f"cannot list the server's tools: {exc.render()}", err=True)
        sys.exit(EXIT_USAGE)
    current = {tool.name: _hash(tool) for tool in tools}
    if check:
        report = compare(policy, current)
        _print(report)
        if not report.drift:
            click.echo(f"{config}: no drift ({len(policy.pins())} pinned tools match)")
        sys.exit(EXIT_DRIFT if report.drift else 0)
    try:
        edited, report = write_pins(text, policy, current, str(config))
    except InputError as exc:
        report_invalid(config, "policy", exc)
        sys.exit(EXIT_INVALID)
    report.changed = []  # written now: no longer drift
    _print(report)
    if edited != text:
        atomic_write_text(config, edited)
    click.echo(f"{config}: pinned {len(report.pinned)} tools", err=True)


def _hash(tool: ScannedTool) -> str:
    definition = {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "annotations": tool.annotations,
    }
    try:
        return definition_hash(definition)
    except DefinitionError:
        return "unhashable"


def _header(header: str) -> tuple[str, str]:
    try:
        return parse_header_option(header)
    except ValueError as exc:  # its text never quotes the value: it is usually a credential
        raise click.UsageError(str(exc)) from None


def _print(report: PinReport) -> None:
    """One line per tool: changed, added (not named by the policy), removed (pinned, not listed)."""
    for kind, names in (("changed", report.changed), ("added", report.added), ("removed", report.removed)):
        for name in names:
            click.echo(f"{kind:8} {terminal_safe(name)}")


COMMANDS = [pin]
