"""docs/CLI.md, generated from the click commands so that every command and option is documented.

Update it after changing a command: `make cli-docs` (or `python -m tests.cli.cli_reference`).
`tests/cli/test_cli_reference.py` fails while the file differs from what the commands say.
"""

from __future__ import annotations

from pathlib import Path

import click

from intercept.cli import main

CLI_DOCS = Path(__file__).resolve().parents[2] / "docs" / "CLI.md"

HEADER = """# Command-line reference

Every `intercept` command and option, generated from the commands themselves
(`make cli-docs` rewrites this file; a test fails when it is out of date). The topic guides
explain the behaviour behind each option: [POLICY.md](POLICY.md), [PROXY.md](PROXY.md),
[HTTP.md](HTTP.md), [STATE.md](STATE.md), [SITE.md](SITE.md), [SCAN.md](SCAN.md),
[CLASSIFIER.md](CLASSIFIER.md), [RECOMMENDATIONS.md](RECOMMENDATIONS.md).
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option_row(ctx: click.Context, param: click.Parameter) -> str:
    names = ", ".join(f"`{name}`" for name in [*param.opts, *param.secondary_opts])
    record = param.get_help_record(ctx)
    help_text = record[1] if record else ""
    return f"| {names} | {_cell(help_text)} |"


def _command_section(path: list[str], command: click.Command, parent: click.Context) -> list[str]:
    ctx = click.Context(command, info_name=path[-1], parent=parent)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f"## {' '.join(path)}", "", "```", f"{' '.join(path)} {usage}".rstrip(), "```", ""]
    if command.help:
        lines += [_cell(command.help.split("\f")[0]), ""]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    if arguments:
        lines += ["Arguments: " + ", ".join(f"`{p.human_readable_name}`" for p in arguments), ""]
    if options:
        lines += ["| Option | What it does |", "|---|---|"]
        lines += [_option_row(ctx, p) for p in options]
        lines.append("")
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                lines += _command_section([*path, name], sub, ctx)
    return lines


def render_cli_reference() -> str:
    """The whole of docs/CLI.md as the commands define it now."""
    root = click.Context(main, info_name="intercept")
    lines = [HEADER]
    for name in main.list_commands(root):
        command = main.get_command(root, name)
        assert command is not None
        lines += _command_section(["intercept", name], command, root)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    CLI_DOCS.write_text(render_cli_reference(), encoding="utf-8")
    print(f"wrote {CLI_DOCS}")
