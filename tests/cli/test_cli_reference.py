"""Every command and option of `intercept` is documented: docs/CLI.md matches the commands."""

from __future__ import annotations

import click

from intercept.cli import main
from tests.cli.cli_reference import CLI_DOCS, render_cli_reference


def _every_option() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(path: str, command: click.Command, ctx: click.Context) -> None:
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                found.extend((path, opt) for opt in param.opts if opt.startswith("--"))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(f"{path} {name}", sub, click.Context(sub, parent=ctx))

    root = click.Context(main)
    for name in main.list_commands(root):
        command = main.get_command(root, name)
        assert command is not None
        walk(f"intercept {name}", command, click.Context(command, parent=root))
    return found


def test_cli_reference_is_current() -> None:
    assert CLI_DOCS.read_text(encoding="utf-8") == render_cli_reference(), (
        "docs/CLI.md is out of date: run `make cli-docs` and review the diff"
    )


def test_every_long_option_has_a_row_under_its_command() -> None:
    text = CLI_DOCS.read_text(encoding="utf-8")
    sections = {block.split("\n", 1)[0].strip(): block for block in text.split("\n## ")[1:]}
    options = _every_option()
    assert len(options) > 40, "the walk found too few options to be checking anything"
    for command, option in options:
        assert f"`{option}`" in sections[command], f"{command} {option} is missing from docs/CLI.md"
