"""`intercept registry refresh`: re-scan one registry entry the way its provenance says and rewrite it.

npm and PyPI entries are installed afresh (no install scripts) and run in the sandbox, like
`intercept registry add`; other local commands run in the sandbox as they are."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from generator.catalog.diff import diff_tools
from generator.catalog.entry import build_server_data, dummy_env, dump_yaml
from generator.catalog.failures import FailureReason, classify_failure
from generator.catalog.intake import IntakeError, PackageSpec, intake, scan_in_sandbox
from generator.catalog.load import REGISTRY_FILE_MAX_BYTES, load_server_file, validate_server_data
from generator.catalog.models import Server
from intercept.scan import HttpTarget, ScanError, ScanResult, scan
from intercept.util.fsutil import atomic_write_text
from intercept.util.safeyaml import read_yaml_file


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    ok: bool
    headline: str
    detail: str = ""
    reason: FailureReason | None = None


def refresh_entry(path: Path, timeout: float) -> RefreshOutcome:
    """Re-scan one registry file the way its provenance says, keep curation, and rewrite it if valid."""
    server, errors = load_server_file(path)
    if server is None:
        return RefreshOutcome(False, "invalid entry", "\n".join(e.render(str(path)) for e in errors))
    if server.provenance.method != "scan":
        return RefreshOutcome(True, "skipped (entered by hand, not scanned)")
    existing = read_yaml_file(path, REGISTRY_FILE_MAX_BYTES)
    env_names = list(server.provenance.env_names)
    try:
        if server.run.package_manager == "remote":
            if not server.run.url:
                return RefreshOutcome(False, "remote entry has no run.url")
            result = scan(HttpTarget(server.run.url), timeout)
        elif server.run.package_manager in ("npm", "pypi"):
            spec = PackageSpec(server.run.package_manager, server.run.package, server.run.version)
            args = server.run.scan_command()[2:]
            done = intake(spec, args, server.run.scan_env(), env_names, timeout)
            result, env_names = done.result, done.env_names
        else:
            result = _scan_command_in_sandbox(server, timeout)
    except IntakeError as exc:
        detail = "\n".join(filter(None, [exc.message, exc.tail]))
        return RefreshOutcome(False, f"scan failed ({exc.reason})", detail, exc.reason)
    except ScanError as exc:
        return RefreshOutcome(
            False, "scan failed", exc.render(), classify_failure(exc.message, exc.stderr_tail)
        )
    if server.run.package_manager != "remote":
        # Record the command as a user would type it: placeholders, not their scan values.
        result = dataclasses.replace(result, command=server.run.command())
    data = build_server_data(result, server.slug, existing, env_names=env_names)
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


def _scan_command_in_sandbox(server: Server, timeout: float) -> ScanResult:
    command = server.run.scan_command()
    beside_python = Path(sys.executable).parent / command[0]
    if shutil.which(command[0]) is None and beside_python.exists():
        command[0] = str(beside_python)
    env = dummy_env(server.provenance.env_names) | server.run.scan_env()
    return scan_in_sandbox(command, env, timeout)
