"""The `intercept` command line: a thin layer of click commands over callable functions.

Each command group lives in `intercept/commands/<topic>.py` and is registered here.
"""

from __future__ import annotations

from typing import Any

import click

from intercept import __version__
from intercept.commands import policy_cmds, run_cmds, scan_cmds, site_cmds


class InterceptGroup(click.Group):
    """Also accepts the Go original's form `intercept -c policy.yaml -- <cmd...>` as `run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and (args[0] in {"-c", "--config"} or args[0].startswith("--config=")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=InterceptGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="intercept")
def main() -> None:
    """Intercept: MCP tool reference, starter policies, and an enforcement proxy."""


def _register(*commands: Any) -> None:
    for command in commands:
        main.add_command(command)


_register(*policy_cmds.COMMANDS)
_register(*scan_cmds.COMMANDS)
_register(*run_cmds.COMMANDS)
_register(*site_cmds.COMMANDS)
