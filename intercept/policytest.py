"""`intercept test`: a policy's test cases, run against the real engine with a clock the cases set.

A cases file (docs/POLICY.md, "Testing a policy") lists cases; each is a sequence of calls with
the decision each call must get. Every case starts from empty counters (a `MemoryStore`) at its
own start time, and every call is decided by `Engine.decide`, as the proxy decides it. An
admitted call's counters are committed, as if the server answered with a result, or given back
when the call says the server answered `isError: true`.

The file is validated like a policy: unknown keys are errors, every error has its location.
Failures name the call by its position and tool, never by its arguments.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from intercept.engine import Admission, Denial, Engine, ToolCall, ToolSchema
from intercept.policy import Rule
from intercept.state.memory import MemoryStore
from intercept.status import clean
from intercept.util.errors import InputError, LocatedError, fail, from_validation_error
from intercept.util.safeyaml import YamlInputError, read_yaml_file

CASES_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""A case's start unless it gives one: the start of a UTC day, so calendar windows start with it."""

MAX_REPEAT = 100_000
Expected = Literal["allow", "deny", "require_approval"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _json_only(value: Any, where: str = "") -> None:
    """Tool arguments arrive as JSON: a YAML date or a NaN in a case could never be sent."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise fail(f"key {key!r}{where} is not a string", "quote it")
            _json_only(item, where)
    elif isinstance(value, list):
        for item in value:
            _json_only(item, where)
    elif isinstance(value, float) and not math.isfinite(value):
        raise fail(f"a value{where} is not a finite number", "use an ordinary number")
    elif not isinstance(value, str | int | float | bool | type(None)):
        raise fail(
            f"a value{where} is a YAML {type(value).__name__}, not a JSON value",
            'quote it to send a string, e.g. "2024-01-01"',
        )


class CaseCall(_Strict):
    """One call of a case and the decision it must get."""

    tool: Annotated[str, Field(min_length=1, max_length=1024)]
    arguments: dict[str, Any] = Field(default_factory=dict)
    at: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    after: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    repeat: Annotated[int, Field(ge=1, le=MAX_REPEAT)] = 1
    is_error: bool = False
    expect: Expected
    rule: str | None = None
    would_deny: list[str] | None = None

    @field_validator("arguments")
    @classmethod
    def _arguments(cls, arguments: dict[str, Any]) -> dict[str, Any]:
        _json_only(arguments)
        return arguments

    def model_post_init(self, __context: Any) -> None:
        if self.at is not None and self.after is not None:
            raise fail(
                "give `at` or `after`, not both",
                "`at` counts from the case's start, `after` from the call before",
            )
        if self.rule is not None and self.expect == "allow":
            raise fail("`rule` names the rule that denies (or asks for approval)", "drop it, or expect: deny")
        if self.is_error and self.expect != "allow":
            raise fail(
                "`is_error` describes the server's answer, and only an allowed call reaches the server",
                "drop it",
            )
        if self.would_deny is not None and self.expect != "allow":
            raise fail(
                "`would_deny` is recorded only for calls the policy allows", "drop it, or expect: allow"
            )


class Case(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    start: dt.datetime | None = None
    calls: Annotated[list[CaseCall], Field(min_length=1)]

    @field_validator("start")
    @classmethod
    def _start(cls, start: dt.datetime | None) -> dt.datetime | None:
        if start is not None and start.tzinfo is None:
            raise fail("start has no time zone", "write it in UTC, e.g. 2026-01-31T23:59:00Z")
        return start

    def model_post_init(self, __context: Any) -> None:
        previous = 0.0
        for index, call in enumerate(self.calls):
            if call.at is not None and call.at < previous:
                raise fail(
                    f"calls[{index}] is at {call.at:g} s, before the call ahead of it ({previous:g} s)",
                    "list calls in time order; the clock never goes back",
                )
            previous = offsets(call, previous)[-1]

    @property
    def start_time(self) -> float:
        return (self.start or DEFAULT_START).timestamp()


class CaseFile(_Strict):
    schemas: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cases: Annotated[list[Case], Field(min_length=1)]

    @field_validator("schemas")
    @classmethod
    def _schemas(cls, schemas: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, schema in schemas.items():
            _json_only(schema, f" in the schema of {name!r}")
        return schemas

    def model_post_init(self, __context: Any) -> None:
        seen: set[str] = set()
        for case in self.cases:
            if case.name in seen:
                raise fail(f"two cases are named {case.name!r}", "give every case its own name")
            seen.add(case.name)


KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "CaseFile": ("schemas", "cases"),
    "Case": ("name", "start", "calls"),
    "CaseCall": ("tool", "arguments", "at", "after", "repeat", "is_error", "expect", "rule", "would_deny"),
}


def offsets(call: CaseCall, previous: float) -> list[float]:
    """The seconds since the case's start of each repetition of `call`, after one at `previous`."""
    if call.at is not None:
        return [call.at] * call.repeat
    step = call.after or 0.0
    return [previous + step * (i + 1) for i in range(call.repeat)]


def _model_at(loc: tuple[int | str, ...]) -> str | None:
    shape = tuple("#" if isinstance(p, int) else p for p in loc)
    return {(): "CaseFile", ("cases", "#"): "Case", ("cases", "#", "calls", "#"): "CaseCall"}.get(shape)


def parse_cases(data: Any, source: str = "<cases>") -> CaseFile:
    """Validate parsed YAML as a cases file; InputError listing every problem with its location."""
    if not isinstance(data, Mapping) or not data:
        raise InputError(
            source,
            [
                LocatedError(
                    "(top level)", "a cases file is a mapping with a `cases:` list", "start with `cases:`"
                )
            ],
        )
    try:
        return CaseFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, from_validation_error(exc, dict(KNOWN_KEYS), _model_at)) from None


def load_cases(path: Path) -> CaseFile:
    try:
        data = read_yaml_file(path, CASES_MAX_BYTES)
    except YamlInputError as exc:
        raise InputError(str(path), [LocatedError("", str(exc))]) from None
    return parse_cases(data, str(path))


# ---------------------------------------------------------------------------------------------
# Running


def approvals_supported() -> bool:
    """True once a rule can ask for approval, so the engine may answer `require_approval`."""
    return "require_approval" in typing.get_args(Rule.model_fields["action"].annotation)


def decision_kind(decision: Any) -> str:
    """`allow`, `deny`, or `require_approval`: the engine's only other answer is an approval request."""
    if isinstance(decision, Admission):
        return "allow"
    if isinstance(decision, Denial):
        return "deny"
    return "require_approval"


@dataclass(frozen=True, slots=True)
class Failure:
    """The first call of a case that did not get its expected decision."""

    index: int
    """1-based position of the call in the case's `calls`."""
    repetition: int
    repeat: int
    tool: str
    expected: str
    got: str

    def render(self) -> str:
        which = f"call {self.index} ({clean(self.tool)})"
        if self.repeat > 1:
            which += f", repetition {self.repetition} of {self.repeat}"
        return f"{which}: expected {self.expected}, got {self.got}"


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    decisions: int
    failure: Failure | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    def render(self) -> list[str]:
        calls = f"{self.decisions} call{'s' if self.decisions != 1 else ''}"
        if self.failure is None:
            return [f"PASS  {clean(self.name, 200)} ({calls})"]
        return [f"FAIL  {clean(self.name, 200)}", f"      {self.failure.render()}"]


def _describe(expect: str, rule: str | None) -> str:
    return f"{expect} by rule {clean(rule, 200)}" if rule is not None else expect


def _mismatch(call: CaseCall, decision: Any) -> str | None:
    """What `decision` got, if it is not what `call` expects; None if it is."""
    kind = decision_kind(decision)
    rule = getattr(decision, "rule", "") or None
    got = _describe(kind, rule) if kind != "allow" else "allow"
    reason = getattr(decision, "reason", "")
    if reason:
        got += f": {clean(reason, 300)}"
    if kind != call.expect or (call.rule is not None and rule != call.rule):
        if call.expect == "require_approval" and not approvals_supported():
            got += " (this intercept has no approval rules yet, so no call can require approval)"
        return got
    if call.would_deny is not None and isinstance(decision, Admission):
        recorded = [d.rule for d in decision.would_deny]
        if sorted(recorded) != sorted(call.would_deny):
            shown = ", ".join(clean(r, 200) for r in recorded) or "none"
            return f"allow with would_deny [{shown}]"
    return None


async def run_case(engine: Engine, case: Case, schemas: Mapping[str, ToolSchema]) -> CaseResult:
    """Run one case from empty counters; stop at the first call that gets the wrong decision."""
    store = MemoryStore()
    start, clock, decisions = case.start_time, 0.0, 0
    for index, call in enumerate(case.calls, 1):
        times = offsets(call, clock)
        for repetition, offset in enumerate(times, 1):
            clock = offset
            decision = await engine.decide(
                ToolCall(call.tool, call.arguments), store, start + offset, schemas
            )
            decisions += 1
            reservation = getattr(decision, "reservation", None)
            if reservation is not None:
                await (store.rollback(reservation) if call.is_error else store.commit(reservation))
            got = _mismatch(call, decision)
            if got is not None:
                if engine.needs_schema(call.tool) and call.tool not in schemas:
                    got += "; the file gives no input schema for this tool under `schemas:`"
                expected = _describe(call.expect, call.rule)
                if call.would_deny is not None:
                    expected += (
                        f" with would_deny [{', '.join(clean(r, 200) for r in call.would_deny) or 'none'}]"
                    )
                failure = Failure(index, repetition, call.repeat, call.tool, expected, got)
                return CaseResult(case.name, decisions, failure)
    return CaseResult(case.name, decisions)


def run_cases(engine: Engine, cases: CaseFile) -> list[CaseResult]:
    schemas = {name: ToolSchema.learn(schema) for name, schema in cases.schemas.items()}

    async def run_all() -> list[CaseResult]:
        return [await run_case(engine, case, schemas) for case in cases.cases]

    return asyncio.run(run_all())


def summary(results: list[CaseResult]) -> str:
    failed = sum(1 for r in results if not r.passed)
    count = f"{len(results)} case{'s' if len(results) != 1 else ''}"
    return f"{count}: {len(results) - failed} passed, {failed} failed"
