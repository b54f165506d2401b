"""Turn a scan into a registry file: deterministic YAML, curated fields kept, and a readable diff."""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from intercept.scan import ScannedTool, ScanResult, terminal_safe

YAML_WIDTH = 100

SERVER_CURATED_KEYS = ("name", "description", "repository", "homepage", "tags")
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
    "run",
    "provenance",
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
    return {k: data[k] for k in SERVER_KEY_ORDER if k in data}


@dataclass
class ToolChange:
    name: str
    description: tuple[str, str] | None = None
    title: tuple[str, str] | None = None
    schema_paths: list[str] = field(default_factory=list)
    annotations: tuple[str, str] | None = None
    curated_kept: list[str] = field(default_factory=list)


@dataclass
class RegistryDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[ToolChange] = field(default_factory=list)
    dropped_curation: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def render(self) -> str:
        """The diff for a terminal; every piece of server text passes through terminal_safe."""
        return "\n".join(terminal_safe(line) for line in self._lines())

    def _lines(self) -> list[str]:
        if self.empty:
            return ["no tool changes"]
        lines: list[str] = []
        for name in self.added:
            lines.append(f"+ added    {name}")
        for name in self.removed:
            note = " (its curated fields were dropped)" if name in self.dropped_curation else ""
            lines.append(f"- removed  {name}{note}")
        for change in self.changed:
            parts = [
                p
                for p, v in (
                    ("description", change.description),
                    ("title", change.title),
                    ("annotations", change.annotations),
                )
                if v is not None
            ]
            if change.schema_paths:
                parts.append("input schema")
            lines.append(f"~ changed  {change.name}: {', '.join(parts)}")
            if change.curated_kept:
                lines.append(
                    f"    ! curated {', '.join(change.curated_kept)} kept; review it against the new text"
                )
            if change.title is not None:
                lines.append(f"    title: {change.title[0]!r} -> {change.title[1]!r}")
            if change.description is not None:
                lines.extend("    " + d for d in _text_diff(*change.description))
            lines.extend(f"    schema {p}" for p in change.schema_paths)
            if change.annotations is not None:
                lines.append(f"    annotations: {change.annotations[0]} -> {change.annotations[1]}")
        return lines


def _text_diff(old: str, new: str) -> list[str]:
    diff = difflib.unified_diff(_wrap(old), _wrap(new), lineterm="", n=1)
    return [line for line in diff if not line.startswith(("---", "+++", "@@"))]


def _wrap(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(" ".join(text.split()), 90) or [""]


def diff_tools(old: dict[str, Any], new: dict[str, Any]) -> RegistryDiff:
    """Compare the tools of two registry documents by name."""
    before = {t["name"]: t for t in old.get("tools", []) if isinstance(t, dict) and "name" in t}
    after = {t["name"]: t for t in new.get("tools", []) if isinstance(t, dict) and "name" in t}
    result = RegistryDiff()
    result.added = [n for n in after if n not in before]
    result.removed = [n for n in before if n not in after]
    result.dropped_curation = [n for n in result.removed if any(k in before[n] for k in TOOL_CURATED_KEYS)]
    for name, new_tool in after.items():
        old_tool = before.get(name)
        if old_tool is None:
            continue
        change = ToolChange(name)
        if (old_tool.get("description") or "") != (new_tool.get("description") or ""):
            change.description = (old_tool.get("description") or "", new_tool.get("description") or "")
        if old_tool.get("title") != new_tool.get("title"):
            change.title = (str(old_tool.get("title")), str(new_tool.get("title")))
        change.schema_paths = schema_changes(
            old_tool.get("input_schema") or {}, new_tool.get("input_schema") or {}
        )
        if (old_tool.get("annotations") or {}) != (new_tool.get("annotations") or {}):
            change.annotations = (
                _compact(old_tool.get("annotations") or {}),
                _compact(new_tool.get("annotations") or {}),
            )
        if change.description or change.title or change.schema_paths or change.annotations:
            change.curated_kept = [k for k in TOOL_CURATED_KEYS if k in old_tool]
            result.changed.append(change)
    return result


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True)[:200]


def schema_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths that were added (+), removed (-) or changed (~) between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"+ {sub}: {_compact(new[key])}")
            elif key not in new:
                out.append(f"- {sub}")
            else:
                out.extend(schema_changes(old[key], new[key], sub))
        return out
    if old != new:
        return [f"~ {path or '(root)'}: {_compact(old)} -> {_compact(new)}"]
    return []


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


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    ok: bool
    headline: str
    detail: str = ""


def refresh_entry(path: Path, timeout: float) -> RefreshOutcome:
    """Re-scan one registry file the way its provenance says, keep curation, and rewrite it if valid."""
    import shutil
    import sys

    from generator.catalog.models import load_server_file
    from intercept.scan import HttpTarget, ScanError, StdioTarget, Target, scan
    from intercept.util.fsutil import atomic_write_text
    from intercept.util.safeyaml import read_yaml_file

    server, errors = load_server_file(path)
    if server is None:
        return RefreshOutcome(False, "invalid entry", "\n".join(e.render(str(path)) for e in errors))
    if server.provenance.method != "scan":
        return RefreshOutcome(True, "skipped (entered by hand, not scanned)")
    existing = read_yaml_file(path, 8 * 1024 * 1024)
    target: Target
    if server.run.package_manager == "remote":
        if not server.run.url:
            return RefreshOutcome(False, "remote entry has no run.url")
        target = HttpTarget(server.run.url)
    else:
        command = server.run.scan_command()
        if shutil.which(command[0]) is None:
            beside_python = Path(sys.executable).parent / command[0]
            if beside_python.exists():
                command[0] = str(beside_python)
        env = dummy_env(server.provenance.env_names)
        env.update(server.run.env)
        target = StdioTarget(command, env)
    try:
        result = scan(target, timeout)
    except ScanError as exc:
        return RefreshOutcome(False, "scan failed", exc.render())
    if isinstance(target, StdioTarget):
        # Record the command as a user would type it, not the resolved path of our uvx.
        result = dataclasses.replace(result, command=server.run.command())
    data = build_server_data(result, server.slug, existing, env_names=server.provenance.env_names)
    from pydantic import ValidationError

    from generator.catalog.models import Server

    try:
        Server.model_validate(data)
    except ValidationError as exc:
        return RefreshOutcome(False, "re-scan produced an invalid entry", str(exc))
    changes = diff_tools(existing, data)
    atomic_write_text(path, dump_yaml(data))
    if changes.empty:
        return RefreshOutcome(True, f"{len(data['tools'])} tools; no tool changes")
    return RefreshOutcome(True, f"{len(data['tools'])} tools, changed:", changes.render())
