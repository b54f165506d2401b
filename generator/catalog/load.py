"""Loading registry files: read, validate as data, then classify, with every problem located.

Validation (`ServerEntry`) checks what a file holds; the load step that follows gives each tool whose
file leaves `category` out the classifier's category and evidence, and each curated tool its
curated evidence, and only then checks a risk override against the category the tool ended up with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from generator.catalog.classify import classify, hint_conflict
from generator.catalog.models import (
    CURATED_SIGNAL,
    CURATED_WEIGHT,
    KNOWN_KEYS,
    Evidence,
    Registry,
    Server,
    ServerEntry,
    Tool,
    ToolEntry,
    unexplained_risk,
)
from intercept.util.errors import LocatedError, fail, from_validation_error
from intercept.util.safeyaml import YamlInputError, read_yaml_file

REGISTRY_FILE_MAX_BYTES = 8 * 1024 * 1024
"""The largest real server file (hundreds of tools with schemas) is well under 2 MiB."""


@dataclass(frozen=True, slots=True)
class RegistryProblem:
    path: Path
    error: LocatedError

    def render(self) -> str:
        return self.error.render(str(self.path))


class RegistryError(Exception):
    """Every problem found across the registry, reported at once."""

    def __init__(self, problems: Sequence[RegistryProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


def classify_tool(entry: ToolEntry) -> Tool:
    """The tool with its category: curated (its reason the first evidence) or from the classifier.

    Raises ValueError when the tool's risk differs from the one its category implies without a reason.
    """
    tool, problem = _classified(entry)
    if problem is not None:
        raise fail(*problem)
    return tool


def classify_server(entry: ServerEntry) -> tuple[Server | None, list[LocatedError]]:
    """The load step for one validated file: every tool classified, or every problem found doing so."""
    tools: list[Tool] = []
    errors: list[LocatedError] = []
    for index, item in enumerate(entry.tools):
        tool, problem = _classified(item)
        if problem is not None:
            errors.append(LocatedError(f"tools[{index}]", *problem))
        tools.append(tool)
    if errors:
        return None, errors
    return Server.model_construct(entry.model_fields_set, **{**entry.__dict__, "tools": tools}), []


def _classified(entry: ToolEntry) -> tuple[Tool, tuple[str, str] | None]:
    """The classified tool, and the (message, hint) of an unexplained risk override."""
    evidence = entry.evidence
    problem = None
    if entry.category is None:
        result = classify(entry.name, entry.description, entry.input_schema, entry.annotations)
        category, evidence = result.category, list(result.evidence)
        problem = unexplained_risk(category, entry.risk, entry.risk_reason)
    else:
        # The classifier is not consulted for a curated tool: its answer would not be used, and
        # large registries are mostly curated. The model already checked a curated tool's risk.
        category = entry.category
        if not evidence:
            note = entry.category_reason or "set by hand in the registry"
            evidence = [
                Evidence.model_construct(
                    signal=CURATED_SIGNAL, category=category, weight=CURATED_WEIGHT, detail=note
                )
            ]
    conflict = hint_conflict(category, entry.annotations, evidence, entry.category_reason)
    # Every field was validated as part of the entry; only category, evidence and the conflict are new.
    tool = Tool.model_construct(
        entry.model_fields_set | {"category", "evidence", "hint_conflict"},
        **{**entry.__dict__, "category": category, "evidence": evidence, "hint_conflict": conflict},
    )
    return tool, problem


def validate_server_data(data: Mapping[str, Any]) -> tuple[Server | None, list[LocatedError]]:
    """Validate one registry document and classify its tools; the server, or every problem in it."""
    try:
        entry = ServerEntry.model_validate(data)
    except ValidationError as exc:
        return None, from_validation_error(exc, dict(KNOWN_KEYS), _model_at)
    return classify_server(entry)


def _model_at(loc: tuple[int | str, ...]) -> str | None:
    """The model of the mapping at a pydantic location, read from the location's shape."""
    shapes: dict[tuple[str, ...], str] = {
        (): "Server",
        ("run",): "RunSpec",
        ("provenance",): "Provenance",
        ("tools", "#"): "Tool",
        ("tools", "#", "evidence", "#"): "Evidence",
        ("history", "#"): "HistoryEntry",
    }
    return shapes.get(tuple("#" if isinstance(p, int) else p for p in loc))


def load_server_file(path: Path) -> tuple[Server | None, list[LocatedError]]:
    """Load one registry file; return the server or every error in it."""
    try:
        data = read_yaml_file(path, REGISTRY_FILE_MAX_BYTES)
    except YamlInputError as exc:
        return None, [LocatedError("", str(exc))]
    if not isinstance(data, dict):
        return None, [LocatedError("(top level)", "a registry file must be a mapping", "start with `slug:`")]
    errors: list[LocatedError] = []
    slug = data.get("slug")
    if isinstance(slug, str) and slug != path.stem:
        errors.append(
            LocatedError(
                "slug",
                f"slug '{slug}' does not match the file name '{path.name}'",
                f"rename the file to {slug}.yaml or set slug: {path.stem}",
            )
        )
    server, problems = validate_server_data(data)
    if server is None:
        return None, errors + _name_tools(problems, data)
    if errors:
        return None, errors
    return server, []


def _name_tools(errors: list[LocatedError], data: dict[str, Any]) -> list[LocatedError]:
    """Rewrite `tools[3].risk` as `tools[3] (cancel_run).risk` so the error names the tool."""
    tools = data.get("tools")
    if not isinstance(tools, list):
        return errors
    out = []
    for err in errors:
        match = re.match(r"^tools\[(\d+)\]", err.location)
        if match:
            idx = int(match.group(1))
            entry = tools[idx] if idx < len(tools) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str):
                safe = name[:60].encode("unicode_escape").decode("ascii")
                loc = f"tools[{idx}] ({safe})" + err.location[match.end() :]
                err = LocatedError(loc, err.message, err.hint)
        out.append(err)
    return out


def registry_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.is_file())


def load_registry(directory: Path) -> Registry:
    """Load every `*.yaml` in directory, sorted by slug. Raises RegistryError listing all problems."""
    if not directory.is_dir():
        missing = LocatedError(
            "", "registry directory not found", "pass --registry pointing at a folder of <slug>.yaml files"
        )
        raise RegistryError([RegistryProblem(directory, missing)])
    problems: list[RegistryProblem] = []
    servers: list[Server] = []
    for path in registry_files(directory):
        server, errors = load_server_file(path)
        problems.extend(RegistryProblem(path, e) for e in errors)
        if server is not None:
            servers.append(server)
    if problems:
        raise RegistryError(problems)
    servers.sort(key=lambda s: s.slug)
    return Registry(servers)
