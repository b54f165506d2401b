"""The `intercept` command line: a thin layer of click commands over callable functions.

Each command group lives in `intercept/commands/<topic>.py` and is registered here by name.
A command's module is imported only when that command runs, so `intercept validate` does not
pay for importing the MCP SDK, the HTTP stack or the site renderer.
"""

from __future__ import annotations

import importlib

import click

from intercept import __version__

COMMAND_MODULES: dict[str, str] = {
    "validate": "policy_cmds",
    "scaffold": "policy_cmds",
    "pin": "pin_cmds",
    "test": "policy_cmds",
    "run": "run_cmds",
    "status": "status_cmds",
    "approvals": "approvals_cmds",
    "build": "site_cmds",
    "serve": "site_cmds",
    "scan": "scan_cmds",
    "classify": "scan_cmds",
    "registry": "registry_cmds",
}
"""Command name to the module in `intercept.commands` whose `COMMANDS` list defines it."""


class InterceptGroup(click.Group):
    """Also accepts the Go original's form `intercept -c policy.yaml -- <cmd...>` as `run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and (args[0] in {"-c", "--config"} or args[0].startswith("--config=")):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"intercept.commands.{module_name}")
        return next((c for c in module.COMMANDS if c.name == cmd_name), None)


@click.group(cls=InterceptGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="intercept")
def main() -> None:
    """Intercept: MCP tool reference, starter policies, and an enforcement proxy."""
