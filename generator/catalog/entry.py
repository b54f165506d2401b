"""A scan as a registry file: the document (curated fields carried over), its deterministic YAML, and the
harmless environment values a scan starts a server with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from generator.catalog.history import next_history
from intercept.scan import ScannedTool, ScanResult
from intercept.util.tooldef import definition_hash

YAML_WIDTH = 100

SERVER_CURATED_KEYS = ("name", "description", "repository", "homepage", "tags", "status", "status_note")
"""Server fields a person writes; a re-scan never touches them."""

TOOL_CURATED_KEYS = ("summary", "category", "category_reason", "risk", "risk_reason")
"""Tool fields a person writes; a re-scan keeps them while the tool still exists."""

SERVER_KEY_ORDER = (
    "slug",
    "name",
    "description",
    "repository",
    "homepage",
    "tags",
    "status",
    "status_note",
    "run",
    "provenance",
    "history",
    "tools",
)
TOOL_KEY_ORDER = (
    "name",
    "title",
    "description",
    "summary",
    "category",
    "category_reason",
    "risk",
    "risk_reason",
    "input_schema",
    "output_schema",
    "annotations",
    "definition_hash",
)


class _Dumper(yaml.SafeDumper):
    """Never emits anchors: the loader refuses aliases, and identical schemas are common."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=YAML_WIDTH)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """How the scanned server is started, as stored under `run:` in the registry file."""

    package_manager: str
    package: str
    version: str
    args: list[str]
    transport: str = "stdio"
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "package_manager": self.package_manager,
            "package": self.package,
            "version": self.version,
            "args": list(self.args),
            "transport": self.transport,
        }
        if self.url is not None:
            out["url"] = self.url
        return out


def run_info_for(result: ScanResult) -> RunInfo:
    """The run spec implied by the scanned command: `npx -y pkg@v`, `uvx pkg==v`, a URL, or a binary."""
    if result.url is not None:
        return RunInfo(
            "remote", _host(result.url), result.server_version or "unknown", [], "streamable-http", result.url
        )
    cmd = result.command
    if len(cmd) >= 3 and Path(cmd[0]).name == "npx" and cmd[1] in {"-y", "--yes"}:
        spec = cmd[2]
        at = spec.rfind("@")
        if at > 0:
            return RunInfo("npm", spec[:at], spec[at + 1 :], cmd[3:])
    if len(cmd) >= 2 and Path(cmd[0]).name == "uvx" and "==" in cmd[1]:
        package, version = cmd[1].split("==", 1)
        return RunInfo("pypi", package, version, cmd[2:])
    return RunInfo(
        "binary", Path(cmd[0]).name if cmd else "unknown", result.server_version or "unknown", cmd[1:]
    )


def _host(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0] or "remote"


def tool_entry(tool: ScannedTool) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": tool.name}
    if tool.title:
        entry["title"] = tool.title
    entry["description"] = tool.description
    entry["input_schema"] = tool.input_schema
    if tool.output_schema is not None:
        entry["output_schema"] = tool.output_schema
    if tool.annotations:
        entry["annotations"] = tool.annotations
    entry["definition_hash"] = definition_hash(
        {
            "name": tool.name,
            "description": tool.description,
            "inputSchema": tool.input_schema,
            "annotations": tool.annotations,
        }
    )
    return entry


def build_server_data(
    result: ScanResult,
    slug: str,
    existing: dict[str, Any] | None = None,
    *,
    env_names: list[str] | None = None,
    notes: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The registry document for a scan, carrying over curated fields from `existing` (the old file)."""
    old = existing or {}
    data: dict[str, Any] = {"slug": slug}
    data["name"] = old.get("name") or name or result.server_name or slug
    for key in SERVER_CURATED_KEYS[1:]:
        if key in old:
            data[key] = old[key]
    run = run_info_for(result).as_dict()
    old_run = old.get("run")
    if isinstance(old_run, dict):
        for key in ("env", "scan_values"):  # written by hand; a scan cannot know them
            if old_run.get(key):
                run[key] = old_run[key]
    data["run"] = run
    provenance: dict[str, Any] = {
        "method": "scan",
        "obtained_at": result.obtained_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": list(result.command) if result.command else ([result.url] if result.url else []),
        "server_name": result.server_name,
        "server_version": result.server_version,
        "protocol_version": result.protocol_version,
    }
    names = sorted(set(env_names or []))
    if names:
        provenance["env_names"] = names
    old_prov = old.get("provenance")
    old_notes = old_prov.get("notes") if isinstance(old_prov, dict) else None
    kept_notes = notes if notes is not None else old_notes
    if kept_notes:
        provenance["notes"] = kept_notes
    data["provenance"] = {k: v for k, v in provenance.items() if v is not None}
    old_tools = {t.get("name"): t for t in old.get("tools", []) if isinstance(t, dict)}
    tools = []
    for scanned in result.tools:
        entry = tool_entry(scanned)
        previous = old_tools.get(scanned.name, {})
        for key in TOOL_CURATED_KEYS:
            if key in previous:
                entry[key] = previous[key]
        tools.append({k: entry[k] for k in TOOL_KEY_ORDER if k in entry})
    data["tools"] = tools
    data["history"] = next_history(existing, data)
    return {k: data[k] for k in SERVER_KEY_ORDER if k in data}


DUMMY_SECRET = "intercept-scan-dummy"
DUMMY_URL = "http://127.0.0.1:9"
"""Port 9 (discard) on loopback: a server that tries to use a dummy address fails fast and locally."""


def dummy_value(name: str) -> str:
    """A value for an environment variable that can never reach a real service."""
    upper = name.upper()
    if upper.endswith(("_URL", "_URI", "_ENDPOINT", "_BASE", "_API_BASE", "_SERVER")):
        return DUMMY_URL
    if upper.endswith(("_HOST", "_HOSTNAME", "HOST")):
        return "127.0.0.1"
    if upper.endswith("_PORT"):
        return "9"
    if upper.endswith(("_REGION",)):
        return "us-east-1"
    return DUMMY_SECRET


def dummy_env(names: Any) -> dict[str, str]:
    return {name: dummy_value(name) for name in names}
