"""`intercept scan`, `intercept classify` and `intercept registry refresh|check|list`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from intercept.protocol.mcp_headers import parse_header_option
from intercept.sandbox import SandboxUnavailable
from intercept.scan import HttpTarget, ScanError, StdioTarget, Target, scan, terminal_safe
from intercept.util.fsutil import atomic_write_text

EXIT_FAILED = 1
EXIT_USAGE = 2


def _parse_env(pairs: tuple[str, ...], dummies: tuple[str, ...]) -> dict[str, str]:
    from generator.catalog.entry import dummy_env

    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            # Not quoted: the value may be a credential.
            raise click.BadParameter("each value must look like NAME=VALUE", param_hint="--env")
        env[name] = value
    env.update(dummy_env(dummies))
    return env


def _parse_headers(headers: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for header in headers:
        try:
            key, value = parse_header_option(header)
        except ValueError as exc:  # its text never quotes the value: it is usually a credential
            raise click.UsageError(str(exc)) from None
        out[key] = value
    return out


env_option = click.option(
    "--env", "env", multiple=True, help="NAME=VALUE for the server's environment (not recorded)."
)
dummy_env_option = click.option(
    "--dummy-env",
    "dummy_env_names",
    multiple=True,
    help="Give NAME a dummy value that only ever points at 127.0.0.1; the name is recorded.",
)


def _fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(message, err=True)
    sys.exit(code)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a new registry file here (its name gives the slug).",
)
@click.option(
    "--update",
    "update",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Re-scan into this registry file, keeping curated fields; print what changed.",
)
@click.option("--upstream", help="Scan a Streamable HTTP server at this URL instead of a command.")
@click.option("--header", "headers", multiple=True, help="HTTP header for --upstream, as 'Name: value'.")
@env_option
@dummy_env_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the server to start and list its tools.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Run the server in the scan sandbox: no network, uid 65534, read-only file system, resource "
    "limits; `npx -y`/`uvx` packages are installed first with no install scripts.",
)
@click.option("--name", help="Display name for a new entry (default: the name the server reports).")
@click.option("--notes", help="A note stored in the entry's provenance.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def scan_cmd(
    output: Path | None,
    update: Path | None,
    upstream: str | None,
    headers: tuple[str, ...],
    env: tuple[str, ...],
    dummy_env_names: tuple[str, ...],
    timeout: float,
    sandbox: bool,
    name: str | None,
    notes: str | None,
    command: tuple[str, ...],
) -> None:
    """Run a server (after `--`) or connect to --upstream, list its tools, and write a registry entry.

    Without -o or --update the entry is printed to standard output.
    """
    from generator.catalog.diff import diff_tools
    from generator.catalog.entry import build_server_data, dump_yaml

    if output is not None and update is not None:
        _fail("use either -o or --update, not both", EXIT_USAGE)
    if bool(upstream) == bool(command):
        _fail("give a server command after `--`, or --upstream URL (exactly one)", EXIT_USAGE)
    if sandbox and upstream:
        _fail("--sandbox runs a server command; it cannot be used with --upstream", EXIT_USAGE)
    target: Target = (
        HttpTarget(upstream, _parse_headers(headers))
        if upstream
        else StdioTarget(list(command), _parse_env(env, dummy_env_names))
    )
    dest = update or output
    slug = dest.stem if dest is not None else None
    existing = _read_existing(update) if update is not None else None
    try:
        if sandbox and isinstance(target, StdioTarget):
            from generator.catalog.intake import scan_in_sandbox

            result = scan_in_sandbox(target.command, target.env, timeout)
        else:
            result = scan(target, timeout)
    except ScanError as exc:
        _fail(f"scan failed: {exc.render()}")
        return
    except SandboxUnavailable as exc:
        _fail(str(exc))
        return
    env_names = sorted(dummy_env_names) + sorted(p.partition("=")[0] for p in env)
    data = build_server_data(
        result, slug or _slug_guess(result.server_name), existing, env_names=env_names, notes=notes, name=name
    )
    text = dump_yaml(data)
    from generator.catalog.load import REGISTRY_FILE_MAX_BYTES

    if len(text.encode("utf-8")) > REGISTRY_FILE_MAX_BYTES:
        _fail(
            f"the scanned entry is {len(text) // 1024} KiB, over the registry's "
            f"{REGISTRY_FILE_MAX_BYTES // (1024 * 1024)} MiB limit; nothing was written"
        )
    problem = _validate(data, dest)
    if problem:
        _fail(f"the scanned entry is not a valid registry file:\n{problem}")
    if dest is None:
        click.echo(text, nl=False)
        return
    if existing is not None:
        click.echo(diff_tools(existing, data).render())
    atomic_write_text(dest, text)
    origin = terminal_safe(f"{result.server_name} {result.server_version}")
    click.echo(f"wrote {dest} ({len(data['tools'])} tools from {origin})", err=True)


def _read_existing(path: Path) -> dict[str, Any]:
    from generator.catalog.load import REGISTRY_FILE_MAX_BYTES
    from intercept.util.safeyaml import YamlInputError, read_yaml_file

    try:
        data = read_yaml_file(path, REGISTRY_FILE_MAX_BYTES)
    except YamlInputError as exc:
        _fail(f"{path}: {exc}", EXIT_USAGE)
    if not isinstance(data, dict):
        _fail(f"{path}: a registry file must be a mapping", EXIT_USAGE)
    return data  # type: ignore[no-any-return]


def _validate(data: dict[str, Any], dest: Path | None) -> str:
    from generator.catalog.load import validate_server_data

    source = str(dest) if dest else "(output)"
    _, errors = validate_server_data(data)
    return "\n".join(terminal_safe(e.render(source)) for e in errors)


def _slug_guess(server_name: str | None) -> str:
    import re

    raw = (server_name or "server").lower().rsplit("/", 1)[-1]
    slug = re.sub(r"[^a-z0-9]+", "-", raw).strip("-")[:64].strip("-")
    return slug or "server"


scan_cmd.name = "scan"


@click.command()
@click.option("--name", help="Tool name.")
@click.option("--description", default="", help="Tool description.")
@click.option("--schema", default=None, help="Input schema as JSON.")
@click.option("--annotations", default=None, help="MCP annotations as JSON.")
@click.option(
    "--jsonl",
    type=click.File("r"),
    default=None,
    help="Classify many tools: one JSON object per line with name, description, "
    "input_schema (or inputSchema) and annotations; '-' reads standard input.",
)
def classify_cmd(
    name: str | None, description: str, schema: str | None, annotations: str | None, jsonl: Any
) -> None:
    """Print a tool's category, risk and the evidence for it."""
    from generator.catalog.classify import classify
    from generator.catalog.risk import assess_parts

    if jsonl is not None:
        if name is not None:
            _fail("use either --jsonl or --name, not both", EXIT_USAGE)
        out: list[str] = []
        for number, line in enumerate(jsonl, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                _fail(f"line {number}: not JSON ({exc.msg}); write one object per line", EXIT_USAGE)
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                _fail(f"line {number}: expected an object with a string 'name'", EXIT_USAGE)
            tool_schema = item.get("input_schema", item.get("inputSchema"))
            parts = (item["name"], _text(item.get("description")))
            result = classify(*parts, _obj(tool_schema), _obj(item.get("annotations")))
            risk = assess_parts(
                *parts, result.category, _obj(tool_schema) or {}, _obj(item.get("annotations")) or {}
            )
            row = {"name": item["name"], **result.as_json(), "risk": risk.level.value}
            out.append(json.dumps(row, ensure_ascii=False))
        for line_out in out:
            click.echo(line_out)
        return
    if name is None:
        _fail("give --name (and --description, --schema, --annotations), or --jsonl FILE", EXIT_USAGE)
        return
    tool_schema, notes = _json_option(schema, "--schema"), _json_option(annotations, "--annotations")
    result = classify(name, description, tool_schema, notes)
    risk = assess_parts(name, description, result.category, tool_schema or {}, notes or {})
    click.echo(f"{name}: {result.category.value} (risk {risk.level.value})")
    for ev in result.evidence:
        click.echo(f"  {ev.category.value:<11} {ev.weight:+.1f}  {ev.signal}: {ev.detail}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _obj(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _json_option(raw: str | None, option: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        _fail(f"{option}: not JSON ({exc.msg} at column {exc.colno})", EXIT_USAGE)
    if not isinstance(value, dict):
        _fail(f"{option}: expected a JSON object", EXIT_USAGE)
    return value  # type: ignore[no-any-return]


classify_cmd.name = "classify"


COMMANDS = [scan_cmd, classify_cmd]
