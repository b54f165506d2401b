"""How to use a server behind Intercept: the install command, the exact `intercept run` line and
ready configurations for MCP clients, all from the server's registry entry (placeholders as written).

Secrets appear as placeholders such as `<STRIPE_SECRET_KEY>`, never the harmless values a scan
used. Clients that start servers from another working directory get an absolute policy path:
a relative one breaks in Claude Desktop.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from generator.catalog.models import Server
from generator.catalog.policyfile import policy_file_name

DEFAULT_INSTALL_COMMAND = "pip install <path-to-intercept-checkout>"
"""Intercept is not published on PyPI; it installs from a checkout of its source (see docs/SITE.md)."""

ABSOLUTE_DIR = "/ABSOLUTE/PATH/TO/policies"
"""What a reader replaces with the folder holding the policy, where the client needs a full path."""


def required_env(server: Server) -> dict[str, str]:
    """The environment the server needs: run.env as written, and each variable its scan had to set."""
    env = {name: f"<{name}>" for name in server.provenance.env_names}
    env.update(server.run.env)
    return dict(sorted(env.items()))


def proxy_args(server: Server, policy_path: str) -> list[str]:
    """`intercept run`'s arguments (without the program) for this server and policy path."""
    if server.run.transport == "stdio":
        return ["run", "-c", policy_path, "--", *server.run.command()]
    return ["run", "-c", policy_path, "--upstream", server.run.url or "<SERVER_URL>"]


def run_command(server: Server, policy_path: str | None = None) -> str:
    """The shell line that starts the server behind its policy."""
    return shlex.join(["intercept", *proxy_args(server, policy_path or policy_file_name(server))])


@dataclass(frozen=True, slots=True)
class ClientConfig:
    client: str
    file: str
    """Where the configuration goes."""
    language: str
    """'json' or 'bash', for highlighting."""
    text: str
    note: str


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def client_configs(server: Server) -> list[ClientConfig]:
    name = policy_file_name(server)
    env = required_env(server)
    absolute = f"{ABSOLUTE_DIR}/{name}"
    workspace = f"${{workspaceFolder}}/policies/{name}"

    def entry(policy: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {**extra, "command": "intercept", "args": proxy_args(server, policy)}
        if env:
            out["env"] = env
        return out

    claude_code = ["claude", "mcp", "add", server.slug]
    for key, value in env.items():
        claude_code += ["--env", f"{key}={value}"]
    line = shlex.join([*claude_code, "--", "intercept"])
    args = proxy_args(server, "POLICY")
    line += " " + " ".join('"$PWD/policies/' + name + '"' if a == "POLICY" else shlex.quote(a) for a in args)
    return [
        ClientConfig(
            "Claude Desktop",
            "claude_desktop_config.json",
            "json",
            _json({"mcpServers": {server.slug: entry(absolute)}}),
            f"Claude Desktop starts servers outside your project, so the policy path must be absolute: "
            f"replace {ABSOLUTE_DIR}. If it cannot find intercept, give its full path "
            "(`which intercept`).",
        ),
        ClientConfig(
            "Claude Code",
            "shell, in your project folder",
            "bash",
            line + "\n",
            "Run it where policies/ is; the shell expands $PWD, so the stored path is absolute.",
        ),
        ClientConfig(
            "Cursor",
            ".cursor/mcp.json",
            "json",
            _json({"mcpServers": {server.slug: entry(workspace)}}),
            "Cursor expands ${workspaceFolder} to the project folder.",
        ),
        ClientConfig(
            "VS Code",
            ".vscode/mcp.json",
            "json",
            _json({"servers": {server.slug: entry(workspace, type="stdio")}}),
            "VS Code's key is servers, not mcpServers; it expands ${workspaceFolder}.",
        ),
    ]
