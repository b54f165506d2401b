"""`intercept validate` and `intercept scaffold`: check a policy, print a server's recommended policy."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Literal

import click

from intercept.policy import load_policy
from intercept.util.errors import InputError
from intercept.util.fsutil import atomic_write_text

EXIT_INVALID = 1
EXIT_USAGE = 2


@click.command()
@click.option(
    "-c",
    "--config",
    "config",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, readable=False),
    help="Policy file to check.",
)
def validate(config: Path) -> None:
    """Check a policy file; print every error with its location, or a one-line summary."""
    try:
        policy = load_policy(config)
    except InputError as exc:
        count = len(exc.errors)
        if count == 1 and not exc.errors[0].location:
            # Unreadable or not YAML at all: one line says it all.
            click.echo(exc.errors[0].render(str(config)), err=True)
            sys.exit(EXIT_INVALID)
        click.echo(f"{config}: policy is invalid ({count} error{'s' if count != 1 else ''}):", err=True)
        for err in exc.errors:
            click.echo(f"  - {err.render()}", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(f"{config}: policy is valid: {policy.summary().render()}")
    if not policy.tools and not policy.hide and policy.default == "allow":
        # Valid, but almost certainly not what was meant: e.g. an empty or comment-only file.
        click.echo(
            f"{config}: warning: this policy admits every call (no tools, nothing hidden, default allow); "
            "add rules under `tools:` or set `default: deny`",
            err=True,
        )


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
def scaffold(
    server: str, output: Path | None, default: Literal["allow", "deny"], registry: Path | None
) -> None:
    """Print the recommended policy for SERVER (a registry slug, e.g. trigger-dev)."""
    from generator.catalog.load import RegistryError, load_registry
    from generator.catalog.policyfile import render_policy_file
    from generator.resources import registry_dir

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
    text = render_policy_file(found, default)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            atomic_write_text(output, text)
        except OSError as exc:
            click.echo(f"cannot write {output}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_USAGE)
        click.echo(f"wrote {output} ({len(found.tools)} tools)", err=True)


def unknown_server_message(server: str, slugs: list[str]) -> str:
    """Name the closest slugs, so a typo costs one retry."""
    near = difflib.get_close_matches(server, slugs, n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    return f"unknown server {server!r}.{hint} `intercept registry list` shows all {len(slugs)} servers."


COMMANDS = [validate, scaffold]
