"""The lazy command table in intercept.cli names every command each module defines, and no others."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import intercept.commands
from intercept.cli import COMMAND_MODULES, main


def _defined_commands() -> dict[str, str]:
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(intercept.commands.__path__):
        module = importlib.import_module(f"intercept.commands.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            found[command.name] = info.name
    return found


def test_every_defined_command_is_registered_with_its_module() -> None:
    assert _defined_commands() == COMMAND_MODULES


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "intercept", "--help"], capture_output=True, text=True, check=True
    )
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMAND_MODULES)


def test_validate_does_not_import_the_mcp_sdk_or_http_stack() -> None:
    code = (
        "import sys; from intercept.cli import main\n"
        "try:\n    main(['validate', '--help'])\nexcept SystemExit:\n    pass\n"
        "bad = sorted(m for m in ('mcp', 'httpx', 'uvicorn', 'starlette', 'jinja2') if m in sys.modules)\n"
        "print('loaded:' + ','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "loaded:"


def test_unknown_command_is_a_usage_error() -> None:
    assert main.get_command(None, "nope") is None  # type: ignore[arg-type]
