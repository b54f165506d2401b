"""Registry file models: what one YAML file per MCP server may hold, validated as data only.

A file may leave a tool's category out; the models accept that (`ToolEntry`, `ServerEntry`) and never
classify. The load step (`generator.catalog.load`) turns entries into `Tool`s and `Server`s, whose
every tool has a category, curated or classified, and the evidence for it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from intercept.policy import TOOL_NAME_RE
from intercept.util.errors import fail
from intercept.util.tooldef import DEFINITION_HASH_RE
from intercept.util.tooldef import definition_hash as hash_definition

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]{0,63})>")


class RunSpec(_Strict):
    """How to start the server.

    An argument or environment value may hold a placeholder such as `<STRIPE_SECRET_KEY>`, shown to
    users as written; `scan_values` gives each placeholder the harmless value a scan starts the server
    with, so what a user copies never holds a scan dummy.
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
        used = {name for arg in [*self.args, *self.env.values()] for name in PLACEHOLDER.findall(arg)}
        if missing := sorted(used - self.scan_values.keys()):
            raise fail(
                f"args or env use {', '.join(f'<{n}>' for n in missing)} but scan_values has no value for it",
                "add a harmless value under run.scan_values, e.g. a test key",
            )
        if unused := sorted(self.scan_values.keys() - used):
            raise fail(
                f"scan_values has {', '.join(unused)}, which no argument uses",
                "write the placeholder into an argument or env value as <NAME>, or remove the value",
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
        return self._argv([self._scan_value(arg) for arg in self.args])

    def scan_env(self) -> dict[str, str]:
        """The environment a scan starts the server with: placeholders replaced by their scan values."""
        return {name: self._scan_value(value) for name, value in self.env.items()}

    def _scan_value(self, text: str) -> str:
        values = self.scan_values
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

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


class HintConflict(_Strict):
    """Where a tool's category contradicts its server's own annotation, and why the category stands.

    `hint` and `value` name the annotation (`readOnlyHint: true` on a tool rated write), `reason` is
    the curated reason or the classifier's deciding evidence."""

    hint: Literal["readOnlyHint", "destructiveHint"]
    value: bool
    category: Category
    reviewed: bool
    """True when a person chose the category (then `reason` is theirs), false for the classifier."""
    reason: str

    @property
    def summary(self) -> str:
        who = "a reviewer rated it" if self.reviewed else "it is rated"
        reason = self.reason.removeprefix("reviewed: ")
        return (
            f"The server marks this tool {self.hint}: {str(self.value).lower()}, "
            f"but {who} {self.category.value}: {reason}."
        )


RULE_SIGNALS = frozenset({"read-query", "data-loss", "runs-code", "money", "annotation"})
"""Classifier signals that decide a category after the weighing (they carry no weight)."""


def deciding_evidence(category: Category, evidence: list[Evidence] | tuple[Evidence, ...]) -> str:
    """The detail of the signal that gave `category`: a deciding rule, else the strongest for it."""
    for ev in reversed(evidence):
        if ev.category is category and ev.signal in RULE_SIGNALS and ev.weight == 0:
            return ev.detail
    for ev in evidence:
        if ev.category is category and ev.signal != "annotation":
            return ev.detail
    return evidence[0].detail if evidence else ""


def unexplained_risk(
    category: Category, risk: Risk | None, risk_reason: str | None
) -> tuple[str, str] | None:
    """(message, hint) when a tool's risk is set by hand and no reason says why.

    A hand-set risk overrides the judgement of `generator.catalog.risk`, so it must say why."""
    if risk is not None and not risk_reason:
        return (
            f"risk '{risk.value}' is set by hand for a {category.value} tool but risk_reason is missing",
            "add risk_reason explaining the override, or remove risk to let the risk rules decide",
        )
    return None


class ToolEntry(_Strict):
    """A tool as a registry file holds it: `category` is there only when a person curated it."""

    name: str
    title: str | None = None
    description: str = ""
    summary: Annotated[str | None, Field(max_length=200)] = None
    category: Category | None = None
    """Curated when the file sets it; left out, the load step classifies the tool."""
    category_reason: str | None = None
    risk: Risk | None = None
    risk_reason: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] = Field(default_factory=dict)
    definition_hash: str | None = None
    """`sha256:<hex>` of the definition as scanned (see `intercept.util.tooldef`); checked, not trusted."""
    evidence: list[Evidence] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _curation_needs_a_category(cls, data: Any) -> Any:
        """A reason or evidence belongs to a curated category; without one the classifier decides."""
        if isinstance(data, dict) and data.get("category") is None:
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
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not TOOL_NAME_RE.match(name):
            raise fail(
                f"tool name {name!r} is invalid",
                "MCP tool names are 1-128 characters of A-Z a-z 0-9 _ . -",
            )
        return name

    @field_validator("definition_hash")
    @classmethod
    def _hash_form(cls, value: str | None) -> str | None:
        if value is not None and not DEFINITION_HASH_RE.match(value):
            raise fail(
                "definition_hash must be 'sha256:' and 64 lowercase hex digits",
                "run `intercept registry check --fix-hashes` to write it",
            )
        return value

    def wire_definition(self) -> dict[str, Any]:
        """The tool's definition under the names an MCP server sends (`inputSchema`, ...)."""
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
            "annotations": self.annotations,
        }

    def computed_definition_hash(self) -> str:
        """The hash of the definition this entry holds, whatever `definition_hash` says."""
        return hash_definition(self.wire_definition())

    @field_validator("summary", "category_reason")
    @classmethod
    def _one_line(cls, text: str | None, info: ValidationInfo) -> str | None:
        if text is not None and ("\n" in text or "\r" in text):
            raise fail(f"{info.field_name} must be one line", "remove the line breaks")
        return text

    @model_validator(mode="after")
    def _risk_override(self) -> ToolEntry:
        problem = unexplained_risk(self.category, self.risk, self.risk_reason) if self.category else None
        if problem is not None:
            raise fail(*problem)
        return self


class Tool(ToolEntry):
    """A loaded tool: its category is known, curated or classified, and `evidence` says why."""

    category: Category
    hint_conflict: HintConflict | None = None
    """Set by the load step when the category contradicts the server's readOnlyHint or destructiveHint."""

    @property
    def category_curated(self) -> bool:
        """True when a person set the category in the registry file (it overrides the classifier)."""
        return bool(self.evidence) and self.evidence[0].signal == CURATED_SIGNAL

    @property
    def reviewed(self) -> bool:
        """Whether a person reviewed the category (set it, with a reason) rather than the classifier."""
        return self.category_curated

    @property
    def rating_reason(self) -> str:
        """One line on why the tool has its category: the reviewer's reason, else the deciding signal."""
        if self.reviewed and self.category_reason:
            return self.category_reason
        return deciding_evidence(self.category, self.evidence)

    @property
    def required_params(self) -> list[str]:
        required = self.input_schema.get("required", [])
        return [r for r in required if isinstance(r, str)] if isinstance(required, list) else []

    @property
    def one_line(self) -> str:
        """The curated summary, else the first sentence of the server's description."""
        if self.summary:
            return self.summary
        return describing_sentence(self.description) or (self.title or self.name)


DefinitionField = Literal["title", "description", "input_schema", "output_schema", "annotations"]


class HistoryEntry(_Strict):
    """One scan that changed the tool list or the server's version (see `generator.catalog.history`)."""

    obtained_at: datetime
    server_version: str | None = None
    tools: Annotated[int, Field(ge=0)]
    """How many tools the server listed in this scan."""
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: dict[str, list[DefinitionField]] = Field(default_factory=dict)
    """Each changed tool and the fields of its definition that changed."""


ServerStatus = Literal["active", "deprecated", "archived"]


class _ServerFields(_Strict):
    """What a server entry holds besides its tools."""

    slug: str
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: str | None = None
    repository: str | None = None
    homepage: str | None = None
    tags: list[str] = Field(default_factory=list)
    status: ServerStatus = "active"
    """`deprecated`: its maintainers point elsewhere; `archived`: no longer maintained at all."""
    status_note: Annotated[str | None, Field(max_length=300)] = None
    run: RunSpec
    provenance: Provenance
    history: list[HistoryEntry] = Field(default_factory=list)

    @field_validator("slug")
    @classmethod
    def _slug(cls, slug: str) -> str:
        if not SLUG_RE.match(slug):
            raise fail(f"slug {slug!r} is invalid", "use lowercase letters, digits and '-' (max 64)")
        return slug

    @model_validator(mode="after")
    def _note_needs_a_status(self) -> _ServerFields:
        if self.status_note is not None and self.status == "active":
            raise fail(
                "status_note is set but status is active",
                "set status: deprecated or archived, or remove status_note",
            )
        return self

    @field_validator("repository", "homepage")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^\s<>\"']+$", url):
            raise fail(f"{url!r} is not an http(s) URL", "use a full https:// address")
        return url

    @field_validator("tools", check_fields=False)
    @classmethod
    def _unique_tools(cls, tools: list[ToolEntry]) -> list[ToolEntry]:
        seen: set[str] = set()
        dupes = [t.name for t in tools if t.name in seen or seen.add(t.name)]  # type: ignore[func-returns-value]
        if dupes:
            raise fail(f"duplicate tool names: {', '.join(sorted(set(dupes)))}", "list each tool once")
        return tools


class ServerEntry(_ServerFields):
    """A registry file as written: its tools' categories may still be missing."""

    tools: list[ToolEntry]


class Server(_ServerFields):
    """A loaded server: every tool classified."""

    tools: list[Tool]

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)


@dataclass
class Registry:
    """Every server of a registry folder, sorted by slug (see `generator.catalog.load.load_registry`)."""

    servers: list[Server] = field(default_factory=list)

    def __iter__(self) -> Iterator[Server]:
        return iter(self.servers)

    def by_slug(self, slug: str) -> Server | None:
        return next((s for s in self.servers if s.slug == slug), None)

    @property
    def tool_count(self) -> int:
        return sum(len(s.tools) for s in self.servers)


KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "Server": tuple(ServerEntry.model_fields),
    "Tool": tuple(ToolEntry.model_fields),
    "RunSpec": tuple(RunSpec.model_fields),
    "Provenance": tuple(Provenance.model_fields),
    "Evidence": tuple(Evidence.model_fields),
    "HistoryEntry": tuple(HistoryEntry.model_fields),
}
"""The keys each part of a registry file accepts, for "did you mean" hints."""


_TO_THE_AGENT = re.compile(
    r"\b(?:MANDATORY|IMPORTANT|MUST|NEVER|ALWAYS|REJECTS?|CRITICAL|WARNING|DO NOT)\b|[\u26a0\U0001f6a8]|"
    r"^\W*(?:only (?:call|use)|call this|use this(?: tool)? (?:when|if|before|after|only|instead)|"
    r"when to use|do not|don't|you (?:must|should)|before (?:using|calling)|always|never)\b",
    re.IGNORECASE,
)
"""A sentence that instructs the agent ("MANDATORY: ... will REJECT") rather than saying what the tool does.
Capitalised words count only in capitals: "must" is ordinary in a description, "MUST" is shouting."""


def _instructs_the_agent(sentence: str) -> bool:
    for match in _TO_THE_AGENT.finditer(sentence):
        word = match.group(0)
        if (
            not word.isalpha()
            or word.isupper()
            or match.start() == 0
            or not sentence[: match.start()].strip(" *[_#>")
        ):
            return True
    return False


def describing_sentence(text: str, limit: int = 160) -> str:
    """The description's first sentence, or "" when it instructs the agent instead of saying what the
    tool does (the page then quotes the whole description as the server's text)."""
    sentence = first_sentence(text, limit)
    return "" if _instructs_the_agent(sentence) else sentence


def first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of free text, on one line, at most `limit` characters."""
    flat = " ".join(text.split())
    match = re.match(r"^(.+?[.!?])(?:\s|$)", flat)
    sentence = match.group(1) if match else flat
    if len(sentence) > limit:
        sentence = sentence[: limit - 1].rstrip() + "…"
    return sentence
