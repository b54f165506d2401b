"""The policy language's schema: pydantic models, their per-field checks, and KNOWN_KEYS.

This model is the contract between the site generator (which publishes policies) and the
proxy (which enforces them). Both forms are accepted by one model:

* the recommended form the site publishes (`action: allow`, `rate_limit: {max, window}`,
  `validate: {required_args}`), and
* policies written for Intercept, the Go original (`version`, `default`, `hide`, `"*"`,
  `action: evaluate|deny`, `rate_limit: "N/unit"`, `conditions`, `state`).

Every key is checked: an unknown key is an error, never silently ignored. Checks that span
rules (counters defined once, read only when defined) live in `intercept.policy.load`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, field_validator

from intercept.util.errors import fail
from intercept.util.tooldef import DEFINITION_HASH_RE

POLICY_MAX_BYTES = 4 * 1024 * 1024
"""Largest policy file accepted; a real policy is kilobytes, so this only stops accidents."""

WILDCARD = "*"
GLOBAL_SCOPE = "_global"

TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
COUNTER_NAME_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
ARGS_PATH_RE = re.compile(r"^args(\.[^.\s]+)+$")
STATE_PATH_RE = re.compile(r"^state\.([^.\s]+)\.([^.\s]+)$")
CALENDAR_LIMIT_RE = re.compile(r"^\s*(\d+)\s*/\s*(minute|hour|day)\s*$")

CALENDAR_SECONDS: dict[str, int] = {"minute": 60, "hour": 3600, "day": 86400}

Operator = Literal["eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains", "exists"]
OPERATORS: tuple[str, ...] = (
    "eq",
    "neq",
    "in",
    "not_in",
    "lt",
    "lte",
    "gt",
    "gte",
    "regex",
    "contains",
    "exists",
)
NUMERIC_OPERATORS = frozenset({"lt", "lte", "gt", "gte"})
REGEX_MAX_LENGTH = 1024
_JSON_SCALARS: tuple[type, ...] = (str, int, float, bool, type(None))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SlidingRateLimit(_Strict):
    """At most `max` calls in any sliding window of `window` seconds."""

    max: Annotated[int, Field(ge=1, le=1_000_000_000, description="calls admitted per window")]
    window: Annotated[int, Field(ge=1, le=31 * 86400, description="window length in seconds")]


class CalendarRateLimit(_Strict):
    """`N/minute|hour|day`: at most N calls per calendar-aligned UTC window."""

    max: Annotated[int, Field(ge=1, le=1_000_000_000)]
    unit: Literal["minute", "hour", "day"]

    @property
    def seconds(self) -> int:
        return CALENDAR_SECONDS[self.unit]

    def __str__(self) -> str:
        return f"{self.max}/{self.unit}"


def _parse_rate_limit(value: Any) -> Any:
    if isinstance(value, str):
        match = CALENDAR_LIMIT_RE.match(value)
        if not match:
            raise fail(
                f"rate_limit {value!r} is not of the form 'N/minute', 'N/hour' or 'N/day'",
                'write e.g. "60/minute", or use {max: 10, window: 60} for a sliding window',
            )
        count = int(match.group(1))
        if count < 1:
            raise fail("rate_limit must admit at least one call", "use a count of 1 or more, or action: deny")
        return CalendarRateLimit(max=count, unit=match.group(2))
    if value is None or isinstance(value, Mapping | SlidingRateLimit | CalendarRateLimit):
        return value
    raise fail(
        f'rate_limit must be a string like "60/minute" or a mapping {{max, window}}, got {_describe(value)}',
        'write rate_limit: "60/minute" or rate_limit: {max: 10, window: 60}',
    )


def _rate_limit_kind(value: Any) -> str:
    # Strings become CalendarRateLimit before this runs, so a mapping is always a sliding window;
    # routing it to one branch keeps the other branch's errors out of the report.
    return "<calendar>" if isinstance(value, CalendarRateLimit) else "<sliding>"


RateLimit = Annotated[
    Annotated[SlidingRateLimit, Tag("<sliding>")] | Annotated[CalendarRateLimit, Tag("<calendar>")],
    Discriminator(_rate_limit_kind),
]


class Condition(_Strict):
    """A test on an argument (`args.a.b`) or a counter (`state.<tool|_global>.<counter>`)."""

    path: str
    op: Operator
    value: Any = None

    _compiled: re.Pattern[str] | None = PrivateAttr(default=None)

    @field_validator("path")
    @classmethod
    def _check_path(cls, path: str) -> str:
        if not (ARGS_PATH_RE.match(path) or STATE_PATH_RE.match(path)):
            raise fail(
                f"path {path!r} must start with 'args.' or be 'state.<tool|_global>.<counter>'",
                "e.g. args.amount or state.create_charge.daily_spend",
            )
        return path

    def model_post_init(self, __context: Any) -> None:
        op, value = self.op, self.value
        for item in value if isinstance(value, list) else [value]:
            # Tool arguments are JSON; a YAML date or a NaN could never match one.
            if not isinstance(item, (*_JSON_SCALARS, list, dict)):
                raise fail(
                    f"value {item!r} is a YAML {type(item).__name__}, not a JSON value",
                    'quote it to compare with a string, e.g. value: "2024-01-01"',
                )
            if isinstance(item, float) and not math.isfinite(item):
                raise fail("value must be a finite number", "use an ordinary number")
        if op in NUMERIC_OPERATORS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(f"op '{op}' needs a number, got {_describe(value)}", "write value: 100")
        elif op in {"in", "not_in"}:
            if not isinstance(value, list) or not value:
                raise fail(f"op '{op}' needs a non-empty list, got {_describe(value)}", "write value: [a, b]")
            if any(isinstance(v, dict | list) for v in value):
                raise fail(f"op '{op}' needs a list of plain values", "use strings, numbers or booleans")
        elif op == "regex":
            if not isinstance(value, str):
                raise fail(
                    f"op 'regex' needs a string pattern, got {_describe(value)}", "write value: '^prod-'"
                )
            if len(value) > REGEX_MAX_LENGTH:
                raise fail("regex is too long", f"keep patterns under {REGEX_MAX_LENGTH} characters")
            try:
                self._compiled = re.compile(value)
            except re.error as exc:
                raise fail(f"regex {value!r} does not compile: {exc}", "check the pattern's syntax") from None
        elif op == "exists":
            if value is not None and not isinstance(value, bool):
                raise fail("op 'exists' takes value true or false (or none)", "write value: true")
        elif op == "contains":
            if value is None or isinstance(value, dict | list):
                raise fail("op 'contains' needs a plain value", "write value: 'DROP'")
        elif op in {"eq", "neq"} and isinstance(value, dict | list):
            raise fail(f"op '{op}' compares plain values only", "use in/not_in for lists")
        if self.path.startswith("state.") and op not in NUMERIC_OPERATORS | {"eq", "neq"}:
            raise fail(
                f"a counter is a number; op '{op}' cannot test it",
                "use lt, lte, gt, gte, eq or neq on state paths",
            )
        if self.path.startswith("state.") and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise fail(
                f"a counter is a number; op '{op}' needs a number, got {_describe(value)}",
                "write value: 100",
            )

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._compiled

    @property
    def arg_path(self) -> tuple[str, ...]:
        return tuple(self.path.split(".")[1:]) if self.path.startswith("args.") else ()

    @property
    def counter_ref(self) -> tuple[str, str] | None:
        match = STATE_PATH_RE.match(self.path)
        return (match.group(1), match.group(2)) if match else None


class StateSpec(_Strict):
    """A counter this rule increments when the call is admitted, in calendar-aligned UTC windows."""

    counter: str
    window: Literal["minute", "hour", "day"]
    increment: Annotated[float, Field(gt=0)] = 1
    increment_from: str | None = None

    @field_validator("counter")
    @classmethod
    def _check_counter(cls, name: str) -> str:
        if not COUNTER_NAME_RE.match(name):
            raise fail(f"counter name {name!r} is invalid", "use letters, digits, '_' or '-' (max 64)")
        return name

    @field_validator("increment_from")
    @classmethod
    def _check_from(cls, path: str | None) -> str | None:
        if path is not None and not ARGS_PATH_RE.match(path):
            raise fail(
                f"increment_from {path!r} must be an argument path", "e.g. increment_from: args.amount"
            )
        return path

    @property
    def seconds(self) -> int:
        return CALENDAR_SECONDS[self.window]


class ValidateSpec(_Strict):
    """Argument checks made before a call is forwarded."""

    required_args: bool = False
    schema_: bool = Field(default=False, alias="schema")


APPROVAL_DEFAULT_TIMEOUT = 120


class ApprovalSpec(_Strict):
    """How long a `require_approval` call waits for a human before it is denied."""

    timeout: Annotated[int, Field(ge=1, le=86400, description="seconds to wait for a decision")] = (
        APPROVAL_DEFAULT_TIMEOUT
    )


class Rule(_Strict):
    """One rule. A call is admitted only if every rule that applies to it admits it."""

    name: str | None = None
    action: Literal["allow", "evaluate", "deny", "require_approval"] = "evaluate"
    mode: Literal["enforce", "shadow"] = "enforce"
    """`shadow`: the rule's would-be denials are recorded, never applied (intercept.shadow)."""
    reason: str | None = None
    on_deny: str | None = None
    rate_limit: RateLimit | None = None
    conditions: list[Condition] = Field(default_factory=list)
    state: StateSpec | None = None
    validate_: ValidateSpec | None = Field(default=None, alias="validate")
    approval: ApprovalSpec | None = None

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate_limit(cls, value: Any) -> Any:
        return _parse_rate_limit(value)

    def model_post_init(self, __context: Any) -> None:
        if self.rate_limit is not None and self.conditions:
            raise fail(
                "rate_limit cannot be combined with conditions in one rule",
                "split them into two rules",
            )
        if self.action == "deny" and (self.rate_limit or self.state or self.validate_):
            raise fail(
                "a deny rule cannot carry rate_limit, state or validate",
                "use action: allow (or evaluate) for limits, or drop them from the deny rule",
            )
        if self.mode == "shadow" and (self.rate_limit or self.state):
            raise fail(
                "a shadow rule counts nothing, so its own rate_limit or state counter would never move",
                "drop mode: shadow to enforce the limit; a shadow rule can test arguments, validation "
                "and counters that enforced rules define",
            )
        if self.mode == "shadow" and self.action == "require_approval":
            raise fail(
                "a shadow rule never holds a call, so it cannot ask for approval",
                "drop mode: shadow, or use another action",
            )
        if self.approval is not None and self.action != "require_approval":
            raise fail("approval applies to action: require_approval only", "drop approval, or change action")
        if self.action == "require_approval" and any(c.counter_ref for c in self.conditions):
            raise fail(
                "a require_approval rule's conditions can test arguments only",
                "move the state.* condition into its own rule",
            )
        if self.reason is not None and self.on_deny is not None and self.reason != self.on_deny:
            raise fail("reason and on_deny are synonyms; they disagree", "keep one of them")

    @property
    def denial_message(self) -> str | None:
        return self.on_deny if self.on_deny is not None else self.reason


class ToolPolicy(_Strict):
    rules: list[Rule] = Field(default_factory=list)
    pin: str | None = None
    """`sha256:<hex>` of the tool's definition (`intercept.util.tooldef`); a tool that no longer
    matches is quarantined at run time (intercept.pinning)."""

    @field_validator("pin")
    @classmethod
    def _check_pin(cls, pin: str | None) -> str | None:
        if pin is not None and not DEFINITION_HASH_RE.match(pin):
            raise fail(
                "pin must be 'sha256:' followed by 64 lowercase hex digits",
                "write the hash `intercept pin` or `intercept scaffold --pin` prints",
            )
        return pin


class Policy(_Strict):
    """A whole policy file."""

    version: Literal["1"] | None = None
    description: str | None = None
    default: Literal["allow", "deny"] = "allow"
    hide: list[str] = Field(default_factory=list)
    tools: dict[str, ToolPolicy] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if value == 1 and not isinstance(value, bool):
            return "1"
        return value

    @field_validator("hide")
    @classmethod
    def _hide(cls, names: list[str]) -> list[str]:
        for name in names:
            if name != WILDCARD and not TOOL_NAME_RE.match(name):
                raise fail(
                    f"hide entry {name!r} is not a valid tool name", 'use the tool\'s exact name, or "*"'
                )
        if len(set(names)) != len(names):
            raise fail("hide lists a tool twice", "list each tool once")
        return names

    @field_validator("tools")
    @classmethod
    def _tool_keys(cls, tools: dict[str, ToolPolicy]) -> dict[str, ToolPolicy]:
        for name in tools:
            if name != WILDCARD and not TOOL_NAME_RE.match(name):
                raise fail(
                    f"tool name {name!r} is invalid",
                    'tool names are 1-128 characters of A-Z a-z 0-9 _ . -, or "*"',
                )
        return tools

    @field_validator("tools")
    @classmethod
    def _no_wildcard_pin(cls, tools: dict[str, ToolPolicy]) -> dict[str, ToolPolicy]:
        wildcard = tools.get(WILDCARD)
        if wildcard is not None and wildcard.pin is not None:
            raise fail('"*" cannot carry a pin: a hash names one tool', "pin each tool by its name")
        return tools

    def pins(self) -> dict[str, str]:
        """The pinned tools and their definition hashes."""
        return {name: tp.pin for name, tp in self.tools.items() if tp.pin is not None}

    def hides(self, tool: str) -> bool:
        return WILDCARD in self.hide or tool in self.hide

    def summary(self) -> PolicySummary:
        return PolicySummary(
            tools=sum(1 for t in self.tools if t != WILDCARD),
            rules=sum(len(t.rules) for t in self.tools.values()),
            hidden=-1 if WILDCARD in self.hide else len(self.hide),
            default=self.default,
            wildcard=WILDCARD in self.tools,
        )


@dataclass(frozen=True, slots=True)
class PolicySummary:
    tools: int
    rules: int
    hidden: int
    """Number of hidden tools; -1 when `hide` holds "*" (every tool)."""
    default: str
    wildcard: bool

    def render(self) -> str:
        extra = ', plus "*" rules' if self.wildcard else ""
        hidden = "all" if self.hidden == -1 else str(self.hidden)
        return f"{self.tools} tools{extra}, {self.rules} rules, {hidden} hidden, default {self.default}"


def counter_scope(tool_key: str) -> str:
    """Counters defined in `"*"` rules live in the `_global` scope."""
    return GLOBAL_SCOPE if tool_key == WILDCARD else tool_key


KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "Policy": ("version", "description", "default", "hide", "tools"),
    "ToolPolicy": ("rules", "pin"),
    "Rule": (
        "name",
        "action",
        "mode",
        "reason",
        "on_deny",
        "rate_limit",
        "conditions",
        "state",
        "validate",
        "approval",
    ),
    "ApprovalSpec": ("timeout",),
    "SlidingRateLimit": ("max", "window"),
    "Condition": ("path", "op", "value"),
    "StateSpec": ("counter", "window", "increment", "increment_from"),
    "ValidateSpec": ("required_args", "schema"),
}
"""Every key of the language, used for 'did you mean' hints and checked against docs/POLICY.md."""


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"
