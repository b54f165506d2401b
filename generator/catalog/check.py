"""What `intercept registry check` finds beyond a valid file: stale definition hashes, scan dummies in
run commands, and categories set by hand without a reason.

Loading never hashes (a large registry would pay for it on every build), so the stored
`definition_hash` of each tool is compared with its definition here, and written by `fix_hashes`.
"""

from __future__ import annotations

import re
from pathlib import Path

from generator.catalog.entry import TOOL_KEY_ORDER, dump_yaml
from generator.catalog.load import REGISTRY_FILE_MAX_BYTES, RegistryProblem, load_server_file
from generator.catalog.models import PLACEHOLDER, RunSpec, Server
from intercept.util.errors import LocatedError
from intercept.util.fsutil import atomic_write_text
from intercept.util.safeyaml import read_yaml_file

FIX_HASHES = "intercept registry check --fix-hashes"

_DUMMY_VALUE = re.compile(
    r"(?:^|[/@=:\[])(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|0\.0\.0\.0|::1)(?:$|[:/\]])"
    r"|(?:^|[=/])tmp/|dummy|intercept[-_]scan",
    re.IGNORECASE,
)
"""A loopback address, a /tmp path or a dummy marker: what a scan starts a server with, not a user."""


def check_server(server: Server) -> list[LocatedError]:
    """Every unexplained hand-set category, stale or missing definition hash, and run value that looks
    like a scan dummy."""
    errors = _dummy_values(server.run)
    for index, tool in enumerate(server.tools):
        if tool.reviewed and not (tool.category_reason or "").strip():
            errors.append(
                LocatedError(
                    f"tools[{index}] ({tool.name}).category_reason",
                    f"category '{tool.category.value}' is set by hand but has no reason",
                    "add a one-line category_reason saying what the tool does that makes it "
                    f"{tool.category.value}, or remove category to let the classifier decide",
                )
            )
        where = f"tools[{index}] ({tool.name}).definition_hash"
        if tool.definition_hash is None:
            errors.append(LocatedError(where, "missing", f"run `{FIX_HASHES}` to write it"))
        elif tool.definition_hash != tool.computed_definition_hash():
            errors.append(
                LocatedError(
                    where,
                    "does not match the tool's name, description, input_schema and annotations",
                    "re-scan with `intercept registry refresh` if the server changed; if the definition "
                    f"was corrected by hand to what the server sends, run `{FIX_HASHES}`",
                )
            )
    return errors


def _dummy_values(run: RunSpec) -> list[LocatedError]:
    hint = (
        "users copy this command: write a placeholder such as <DATABASE_URL> here and put the scan's "
        "value under run.scan_values"
    )
    found = [(f"run.args[{i}]", arg) for i, arg in enumerate(run.args)]
    found += [(f"run.env.{name}", value) for name, value in sorted(run.env.items())]
    return [
        LocatedError(where, "looks like a scan dummy (a loopback address, /tmp path or dummy value)", hint)
        for where, value in found
        if _DUMMY_VALUE.search(PLACEHOLDER.sub("", value))
    ]


def check_registry(directory: Path, servers: list[Server]) -> list[RegistryProblem]:
    """The problems of every loaded server of `directory`, each located in its file."""
    return [
        RegistryProblem(directory / f"{server.slug}.yaml", error)
        for server in servers
        for error in check_server(server)
    ]


def fix_hashes(path: Path) -> int:
    """Write each tool's definition_hash into a valid registry file; how many it changed."""
    server, errors = load_server_file(path)
    if server is None:
        raise ValueError("\n".join(e.render(str(path)) for e in errors))
    data = read_yaml_file(path, REGISTRY_FILE_MAX_BYTES)
    changed = 0
    tools = []
    for raw, tool in zip(data["tools"], server.tools, strict=True):
        digest = tool.computed_definition_hash()
        if raw.get("definition_hash") != digest:
            changed += 1
            raw = {**raw, "definition_hash": digest}
        order = [k for k in TOOL_KEY_ORDER if k in raw] + [k for k in raw if k not in TOOL_KEY_ORDER]
        tools.append({k: raw[k] for k in order})
    if changed:
        atomic_write_text(path, dump_yaml({**data, "tools": tools}))
    return changed
