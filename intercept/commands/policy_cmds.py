"""`intercept validate`, `test` and `scaffold`: check a policy, run its test cases, print a server's
recommended policy (and test cases for it)."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import click

from intercept.policy import load_policy
from intercept.util.errors import InputError
from intercept.util.fsutil import atomic_write_text

EXIT_INVALID = 1
EXIT_USAGE = 2


def config_option(help_text: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """`-c/--config POLICY`, as every policy command takes it."""
    return click.option(
        "-c",
        "--config",
        "config",
        required=True,
        type=click.Path(path_type=Path, dir_okay=False, readable=False),
        help=help_text,
    )


@click.command()
@config_option("Policy file to check.")
def validate(config: Path) -> None:
    """Check a policy file; print every error with its location, or a one-line summary."""
    try:
        policy = load_policy(config)
    except InputError as exc:
        report_invalid(config, "policy", exc)
        sys.exit(EXIT_INVALID)
    click.echo(f"{config}: policy is valid: {policy.summary().render()}")
    if not policy.tools and not policy.hide and policy.default == "allow":
        # Valid, but almost certainly not what was meant: e.g. an empty or comment-only file.
        click.echo(
            f"{config}: warning: this policy admits every call (no tools, nothing hidden, default allow); "
            "add rules under `tools:` or set `default: deny`",
            err=True,
        )


def report_invalid(path: Path, what: str, exc: InputError) -> None:
    """Every error of an invalid file on stderr, with its location."""
    count = len(exc.errors)
    if count == 1 and not exc.errors[0].location:
        # Unreadable or not YAML at all: one line says it all.
        click.echo(exc.errors[0].render(str(path)), err=True)
        return
    click.echo(f"{path}: {what} is invalid ({count} error{'s' if count != 1 else ''}):", err=True)
    for err in exc.errors:
        click.echo(f"  - {err.render()}", err=True)


@click.command(name="test")
@config_option("Policy file to test.")
@click.argument("cases", type=click.Path(path_type=Path, dir_okay=False, readable=False))
def policy_test(config: Path, cases: Path) -> None:
    """Run the test cases in CASES against the policy in CONFIG; exit 1 if any fails.

    Each case starts from empty counters and its own clock; every call is decided by the proxy's
    engine. The format is in docs/POLICY.md ("Testing a policy").
    """
    from intercept.engine import Engine
    from intercept.policytest import load_cases, run_cases, summary

    policy = case_file = None
    try:
        policy = load_policy(config)
    except InputError as exc:
        report_invalid(config, "policy", exc)
    try:
        case_file = load_cases(cases)
    except InputError as exc:
        report_invalid(cases, "test cases file", exc)
    if policy is None or case_file is None:
        sys.exit(EXIT_INVALID)
    results = run_cases(Engine(policy), case_file)
    for result in results:
        for line in result.render():
            click.echo(line)
    click.echo(summary(results))
    if not all(result.passed for result in results):
        sys.exit(EXIT_INVALID)


@click.command()
@click.argument("server")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file (atomically) instead of standard output.",
)
@click.option(
    "--default",
    "default",
    type=click.Choice(["allow", "deny"]),
    default="allow",
    show_default=True,
    help="What the policy does with tools it does not list.",
)
@click.option(
    "--registry",
    type=click.Path(path_type=Path, file_okay=False),
    help="Registry folder (default: the registry shipped with intercept).",
)
@click.option(
    "--tests",
    "tests_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write test cases that the policy passes to this file, for `intercept test`.",
)
@click.option(
    "--pin",
    is_flag=True,
    help="Pin every tool to the registry's definition hash (pin: sha256:...), so the proxy "
    "quarantines a tool whose definition changes.",
)
def scaffold(
    server: str,
    output: Path | None,
    default: Literal["allow", "deny"],
    registry: Path | None,
    tests_file: Path | None,
    pin: bool,
) -> None:
    """Print the recommended policy for SERVER (a registry slug, e.g. trigger-dev)."""
    from generator.catalog.load import RegistryError, load_registry
    from generator.catalog.policyfile import policy_file_name, render_policy_file
    from generator.catalog.policytests import render_policy_tests
    from generator.resources import registry_dir

    if tests_file is not None and output is not None and tests_file.resolve() == output.resolve():
        raise click.UsageError(
            "--tests and --output name the same file; give the test cases a file of their own"
        )

    try:
        reg = load_registry(registry or registry_dir())
    except RegistryError as exc:
        click.echo("registry is invalid:", err=True)
        click.echo(exc.render(), err=True)
        sys.exit(EXIT_USAGE)
    found = reg.by_slug(server)
    if found is None:
        click.echo(unknown_server_message(server, [s.slug for s in reg]), err=True)
        sys.exit(EXIT_USAGE)
    text = render_policy_file(found, default, pin)
    if tests_file is not None:
        policy_name = output.name if output is not None else policy_file_name(found)
        tests, count = render_policy_tests(found, policy_name, tests_file.name)
        _write(tests_file, tests, f"{count} cases")
    if output is None:
        click.echo(text, nl=False)
    else:
        _write(output, text, f"{len(found.tools)} tools")


def _write(path: Path, text: str, what: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        click.echo(f"cannot write {path}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"wrote {path} ({what})", err=True)


def unknown_server_message(server: str, slugs: list[str]) -> str:
    """Name the closest slugs, so a typo costs one retry."""
    near = difflib.get_close_matches(server, slugs, n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    return f"unknown server {server!r}.{hint} `intercept registry list` shows all {len(slugs)} servers."


COMMANDS = [validate, policy_test, scaffold]
