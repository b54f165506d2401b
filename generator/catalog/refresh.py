"""`intercept registry refresh`: re-scan one registry entry the way its provenance says and rewrite it."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from generator.catalog.diff import diff_tools
from generator.catalog.entry import build_server_data, dummy_env, dump_yaml
from generator.catalog.load import REGISTRY_FILE_MAX_BYTES, load_server_file, validate_server_data
from intercept.scan import HttpTarget, ScanError, StdioTarget, Target, scan
from intercept.util.fsutil import atomic_write_text
from intercept.util.safeyaml import read_yaml_file


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    ok: bool
    headline: str
    detail: str = ""


def refresh_entry(path: Path, timeout: float) -> RefreshOutcome:
    """Re-scan one registry file the way its provenance says, keep curation, and rewrite it if valid."""
    server, errors = load_server_file(path)
    if server is None:
        return RefreshOutcome(False, "invalid entry", "\n".join(e.render(str(path)) for e in errors))
    if server.provenance.method != "scan":
        return RefreshOutcome(True, "skipped (entered by hand, not scanned)")
    existing = read_yaml_file(path, REGISTRY_FILE_MAX_BYTES)
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
        env.update(server.run.scan_env())
        target = StdioTarget(command, env)
    try:
        result = scan(target, timeout)
    except ScanError as exc:
        return RefreshOutcome(False, "scan failed", exc.render())
    if isinstance(target, StdioTarget):
        # Record the command as a user would type it, not the resolved path of our uvx.
        result = dataclasses.replace(result, command=server.run.command())
    data = build_server_data(result, server.slug, existing, env_names=server.provenance.env_names)
    _, problems = validate_server_data(data)
    if problems:
        return RefreshOutcome(
            False, "re-scan produced an invalid entry", "\n".join(e.render(str(path)) for e in problems)
        )
    changes = diff_tools(existing, data)
    atomic_write_text(path, dump_yaml(data))
    if changes.empty:
        return RefreshOutcome(True, f"{len(data['tools'])} tools; no tool changes")
    return RefreshOutcome(True, f"{len(data['tools'])} tools, changed:", changes.render())
