"""Registry file models and loading: one YAML file per MCP server, every error located."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from intercept.policy import TOOL_NAME_RE
from intercept.util.errors import LocatedError, fail, from_validation_error
from intercept.util.safeyaml import YamlInputError, read_yaml_file

REGISTRY_FILE_MAX_BYTES = 8 * 1024 * 1024
"""The largest real server file (hundreds of tools with schemas) is well under 2 MiB."""

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class Category(StrEnum):
    READ = "read"
    WRITE = "write"
    EXECUTE = "execute"
    DESTRUCTIVE = "destructive"
    FINANCIAL = "financial"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


CATEGORY_ORDER: tuple[Category, ...] = tuple(Category)
RISK_ORDER: tuple[Risk, ...] = tuple(Risk)

DEFAULT_RISK: dict[Category, Risk] = {
    Category.READ: Risk.LOW,
    Category.WRITE: Risk.MEDIUM,
    Category.EXECUTE: Risk.HIGH,
    Category.DESTRUCTIVE: Risk.CRITICAL,
    Category.FINANCIAL: Risk.CRITICAL,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]{0,63})>")


class RunSpec(_Strict):
    """How to start the server.

    An argument may hold a placeholder such as `<STRIPE_SECRET_KEY>`, shown to users as written;
    `scan_values` gives each placeholder the harmless value a scan starts the server with.
    """

    package_manager: Literal["npm", "pypi", "docker", "binary", "remote"]
    package: Annotated[str, Field(min_length=1, max_length=214)]
    version: Annotated[str, Field(min_length=1, max_length=64)]
    args: list[str] = Field(default_factory=list)
    transport: Literal["stdio", "streamable-http", "sse"] = "stdio"
    url: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    scan_values: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _placeholders_have_scan_values(self) -> RunSpec:
        used = {name for arg in self.args for name in PLACEHOLDER.findall(arg)}
        if missing := sorted(used - self.scan_values.keys()):
            raise fail(
                f"args use {', '.join(f'<{n}>' for n in missing)} but scan_values has no value for it",
                "add a harmless value under run.scan_values, e.g. a test key",
            )
        if unused := sorted(self.scan_values.keys() - used):
            raise fail(
                f"scan_values has {', '.join(unused)}, which no argument uses",
                "write the placeholder into an argument as <NAME>, or remove the value",
            )
        return self

    @field_validator("package", "version")
    @classmethod
    def _no_shell(cls, value: str) -> str:
        if any(ch.isspace() for ch in value) or value.startswith("-"):
            raise fail(f"{value!r} must be a single token", "write the package name and version only")
        return value

    def command(self) -> list[str]:
        """The argv that starts this server, as a user would type it (placeholders as written)."""
        return self._argv(self.args)

    def scan_command(self) -> list[str]:
        """The argv a scan starts the server with: placeholders replaced by their scan values."""
        values = self.scan_values
        return self._argv([PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in self.args])

    def _argv(self, args: list[str]) -> list[str]:
        if self.package_manager == "npm":
            return ["npx", "-y", f"{self.package}@{self.version}", *args]
        if self.package_manager == "pypi":
            return ["uvx", f"{self.package}=={self.version}", *args]
        if self.package_manager == "docker":
            return ["docker", "run", "-i", "--rm", f"{self.package}:{self.version}", *args]
        return [self.package, *args]


class Provenance(_Strict):
    """How and when the tool list was obtained."""

    method: Literal["scan", "manual"]
    obtained_at: datetime
    command: list[str] = Field(default_factory=list)
    server_name: str | None = None
    server_version: str | None = None
    protocol_version: str | None = None
    env_names: list[str] = Field(default_factory=list)
    """Environment variables set for the scan. Names only: their values were dummies."""
    notes: str | None = None


CURATED_SIGNAL = "curated"
CURATED_WEIGHT = 100.0


class Evidence(_Strict):
    """One classifier signal that fired, kept so a page can say why a tool got its category."""

    signal: str
    category: Category
    weight: float
    detail: str


class Tool(_Strict):
    name: str
    title: str | None = None
    description: str = ""
    summary: Annotated[str | None, Field(max_length=200)] = None
    category: Category
    """Curated when the file sets it; otherwise filled at load time by `generator.catalog.classify`."""
    category_reason: str | None = None
    risk: Risk | None = None
    risk_reason: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _fill_category(cls, data: Any) -> Any:
        """A file may leave `category` out: the classifier fills it and its evidence.

        A category the file sets is curated and always wins; its reason becomes the first evidence.
        """
        if not isinstance(data, dict):
            return data
        from generator.catalog.classify import classify

        name = data.get("name")
        description = data.get("description")
        schema = data.get("input_schema")
        annotations = data.get("annotations")
        category = data.get("category")
        if category is None:
            if data.get("category_reason") is not None:
                raise fail(
                    "category_reason is set but category is not",
                    "add the curated category, or remove category_reason to let the classifier decide",
                )
            if data.get("evidence"):
                raise fail(
                    "evidence is set but category is not",
                    "remove evidence: the classifier computes it when category is absent",
                )
        if category is None:
            result = classify(
                name if isinstance(name, str) else "",
                description if isinstance(description, str) else "",
                schema if isinstance(schema, dict) else None,
                annotations if isinstance(annotations, dict) else None,
            )
            return {**data, "category": result.category, "evidence": list(result.evidence)}
        if data.get("evidence"):
            return data
        try:
            curated = Category(category)
        except ValueError:
            return data
        # The classifier is not consulted for a curated tool: its answer would not be used, and
        # large registries are mostly curated.
        reason = data.get("category_reason")
        note = reason if isinstance(reason, str) and reason else "set by hand in the registry"
        first = Evidence.model_construct(
            signal=CURATED_SIGNAL, category=curated, weight=CURATED_WEIGHT, detail=note
        )
        return {**data, "evidence": [first]}

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not TOOL_NAME_RE.match(name):
            raise fail(
                f"tool name {name!r} is invalid",
                "MCP tool names are 1-128 characters of A-Z a-z 0-9 _ . -",
            )
        return name

    @field_validator("summary")
    @classmethod
    def _one_line(cls, summary: str | None) -> str | None:
        if summary is not None and ("\n" in summary or "\r" in summary):
            raise fail("summary must be one line", "remove the line breaks")
        return summary

    @model_validator(mode="after")
    def _risk_override(self) -> Tool:
        if self.risk is not None and self.risk != DEFAULT_RISK[self.category] and not self.risk_reason:
            raise fail(
                f"risk '{self.risk.value}' differs from the '{DEFAULT_RISK[self.category].value}' "
                f"that category '{self.category.value}' implies",
                "add risk_reason explaining the override, or remove risk",
            )
        return self

    @property
    def category_curated(self) -> bool:
        """True when a person set the category in the registry file (it overrides the classifier)."""
        return bool(self.evidence) and self.evidence[0].signal == CURATED_SIGNAL

    @property
    def effective_risk(self) -> Risk:
        return self.risk if self.risk is not None else DEFAULT_RISK[self.category]

    @property
    def required_params(self) -> list[str]:
        required = self.input_schema.get("required", [])
        return [r for r in required if isinstance(r, str)] if isinstance(required, list) else []

    @property
    def one_line(self) -> str:
        """The curated summary, else the first sentence of the server's description."""
        if self.summary:
            return self.summary
        return first_sentence(self.description) or (self.title or self.name)


class Server(_Strict):
    slug: str
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: str | None = None
    repository: str | None = None
    homepage: str | None = None
    tags: list[str] = Field(default_factory=list)
    run: RunSpec
    provenance: Provenance
    tools: list[Tool]

    @field_validator("slug")
    @classmethod
    def _slug(cls, slug: str) -> str:
        if not SLUG_RE.match(slug):
            raise fail(f"slug {slug!r} is invalid", "use lowercase letters, digits and '-' (max 64)")
        return slug

    @field_validator("repository", "homepage")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s<>\"']+$", url):
            raise fail(f"{url!r} is not an http(s) URL", "use a full https:// address")
        return url

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[Tool]) -> list[Tool]:
        seen: set[str] = set()
        dupes = [t.name for t in tools if t.name in seen or seen.add(t.name)]  # type: ignore[func-returns-value]
        if dupes:
            raise fail(f"duplicate tool names: {', '.join(sorted(set(dupes)))}", "list each tool once")
        return tools

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)


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


@dataclass
class Registry:
    servers: list[Server] = field(default_factory=list)

    def __iter__(self) -> Iterator[Server]:
        return iter(self.servers)

    def by_slug(self, slug: str) -> Server | None:
        return next((s for s in self.servers if s.slug == slug), None)

    @property
    def tool_count(self) -> int:
        return sum(len(s.tools) for s in self.servers)


KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "Server": tuple(Server.model_fields),
    "Tool": tuple(Tool.model_fields),
    "RunSpec": tuple(RunSpec.model_fields),
    "Provenance": tuple(Provenance.model_fields),
    "Evidence": tuple(Evidence.model_fields),
}


def _model_at(loc: tuple[int | str, ...]) -> str | None:
    """The model of the mapping at a pydantic location, read from the location's shape."""
    shapes: dict[tuple[str, ...], str] = {
        (): "Server",
        ("run",): "RunSpec",
        ("provenance",): "Provenance",
        ("tools", "#"): "Tool",
        ("tools", "#", "evidence", "#"): "Evidence",
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
    try:
        server = Server.model_validate(data)
    except ValidationError as exc:
        structural = from_validation_error(exc, dict(KNOWN_KEYS), _model_at)
        return None, errors + _name_tools(structural, data)
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


def first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of free text, on one line, at most `limit` characters."""
    flat = " ".join(text.split())
    match = re.match(r"^(.+?[.!?])(?:\s|$)", flat)
    sentence = match.group(1) if match else flat
    if len(sentence) > limit:
        sentence = sentence[: limit - 1].rstrip() + "…"
    return sentence
