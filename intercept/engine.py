"""Policy decisions for `tools/call`: pure, precompiled, no I/O except through the counter store.

`Engine(policy)` compiles a policy once (per load or reload): hidden names, the rule list of
every named tool (its own rules, then the `"*"` rules), argument conditions as closures, and
counter checks as templates. `Engine.decide(call, store, now)` then applies docs/POLICY.md
("How a call is decided"):

1. hide, 2. default, 3. rules in file order: checks that need no counter (deny rules, argument
   conditions, validation, `increment_from` arguments) first, the first failing one giving the
   reason; then every counter the call touches is checked and incremented in one atomic
   `store.reserve`, whose refusal names the first failing check's rule.

Counter keys depend only on the tool key and the rule's name (or position when unnamed), so
counters survive a reload that keeps them. `Engine.check` is the pure part (no await), used by
the decision microbenchmark.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jsonschema
import jsonschema.exceptions
import jsonschema.validators

from intercept.policy import (
    APPROVAL_DEFAULT_TIMEOUT,
    CALENDAR_SECONDS,
    WILDCARD,
    CalendarRateLimit,
    Condition,
    Policy,
    Rule,
    SlidingRateLimit,
    counter_scope,
)
from intercept.state.base import (
    CheckOp,
    CounterCheck,
    CounterStore,
    Refusal,
    Reservation,
    StateError,
)
from intercept.state.readonly import would_refuse

logger = logging.getLogger("intercept.engine")

DENIED_PREFIX = "[INTERCEPT POLICY DENIED]"

_NEGATED: dict[str, CheckOp] = {"lt": "gte", "lte": "gt", "gt": "lte", "gte": "lt", "eq": "neq", "neq": "eq"}
_MISSING = object()

ArgTest = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The part of a `tools/call` request the engine reads."""

    name: str
    arguments: Mapping[str, Any]
    approved: bool = False
    """A human approved this call (see `intercept.approvals`): `require_approval` rules are met."""


@dataclass(frozen=True, slots=True)
class Denial:
    rule: str
    reason: str

    @property
    def text(self) -> str:
        """The text the agent sees in the denied tool result."""
        return f"{DENIED_PREFIX} {self.reason} (rule: {self.rule})"


@dataclass(frozen=True, slots=True)
class Admission:
    """An admitted call; `reservation` is None when the call touches no counter (or fail-open)."""

    reservation: Reservation | None
    rule: str = ""
    would_deny: tuple[Denial, ...] = ()
    """What the call's `mode: shadow` rules (or, under `intercept run --shadow`, the policy) would
    have denied it with; recorded, never applied."""


@dataclass(frozen=True, slots=True)
class ApprovalNeed:
    """A call that a `require_approval` rule holds until a human decides (see `intercept.approvals`)."""

    rule: str
    timeout: float


Decision = Admission | Denial | ApprovalNeed


@dataclass(slots=True)
class ToolSchema:
    """A tool's input schema as learned from `tools/list`, with its validator built on first use."""

    schema: Mapping[str, Any]
    required: tuple[str, ...]
    _validator: Any = None
    _invalid: str | None = None

    @classmethod
    def learn(cls, schema: Any) -> ToolSchema:
        schema = schema if isinstance(schema, Mapping) else {}
        required = schema.get("required")
        names = tuple(r for r in required if isinstance(r, str)) if isinstance(required, list) else ()
        return cls(schema, names)

    def errors(self, arguments: Mapping[str, Any]) -> str | None:
        """First JSON Schema error for `arguments`, or None if they validate."""
        if self._validator is None and self._invalid is None:
            try:
                cls = jsonschema.validators.validator_for(self.schema)
                cls.check_schema(dict(self.schema))
                self._validator = cls(self.schema)
            except Exception as exc:  # any unusable schema fails closed
                self._invalid = f"the tool's input schema is invalid ({type(exc).__name__})"
        if self._invalid is not None:
            return self._invalid
        try:
            error = jsonschema.exceptions.best_match(self._validator.iter_errors(dict(arguments)))
        except Exception as exc:  # a hostile schema ($ref to nowhere, bad regex) must deny, not crash
            return f"arguments could not be checked against the input schema ({type(exc).__name__})"
        if error is None:
            return None
        return f"arguments do not match the input schema: {_schema_violation(error)}"


SchemaLookup = Mapping[str, ToolSchema]

SCHEMA_VALUE_SHOWN_CHARS = 80


def _schema_violation(error: jsonschema.exceptions.ValidationError) -> str:
    """Where and how arguments broke the schema, in the schema's own words only.

    jsonschema's messages quote the offending value (an API key in a string meant to be a
    number, say), and a denial reason reaches the audit log and `intercept status`, which must
    never hold raw arguments. The location is read from the schema path (declared property
    names), and the constraint from the schema, never from the arguments.
    """
    names: list[str] = []
    schema_path = list(error.absolute_schema_path)[:-1]  # the last part is the keyword itself
    index = 0
    while index < len(schema_path):
        part = schema_path[index]
        if part == "properties" and index + 1 < len(schema_path):
            names.append(str(schema_path[index + 1]))
            index += 1
        elif part == "items":
            names.append("[]")
        index += 1
    where = ".".join(names).replace(".[]", "[]") or "(arguments)"
    expected = repr(error.validator_value)
    if len(expected) > SCHEMA_VALUE_SHOWN_CHARS:
        expected = expected[: SCHEMA_VALUE_SHOWN_CHARS - 1] + "…"
    return f"at {where}, the schema's {error.validator!r} constraint ({expected}) is not met"


@dataclass(frozen=True, slots=True)
class _CounterCondition:
    key: str
    window: int
    op: CheckOp
    value: float


@dataclass(slots=True)
class _CompiledRule:
    label: str
    deny: bool
    message: str | None
    arg_tests: tuple[tuple[ArgTest, str], ...] = ()
    counter_conditions: tuple[_CounterCondition, ...] = ()
    condition_text: str = ""
    rate: CounterCheck | None = None
    rate_text: str = ""
    state_key: str | None = None
    state_window: int = 0
    state_increment: float = 1.0
    state_from: tuple[str, ...] | None = None
    required_args: bool = False
    schema: bool = False
    any_of: int = 0  # the store group of a deny rule's negated counter conditions
    shadow: bool = False
    approval_timeout: int = 0  # > 0: a require_approval rule, which applies when its conditions hold


@dataclass(slots=True)
class _ToolPlan:
    rules: tuple[_CompiledRule, ...]
    shadow_rules: tuple[_CompiledRule, ...] = ()
    needs_schema: bool = False
    touches_counters: bool = False
    gated: bool = False
    refused: Denial | None = None
    labels: tuple[str, ...] = field(default_factory=tuple)


def _get_path(arguments: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = arguments
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(left: Any, right: Any) -> bool:
    """Equality with JSON types: 1 == 1.0, but 1 != "1" and true != 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    return type(left) is type(right) and bool(left == right)


def _arg_test(cond: Condition) -> ArgTest:
    path, op, want = cond.arg_path, cond.op, cond.value
    if op == "exists":
        expected = want is None or bool(want)
        return lambda a: (_get_path(a, path) is not _MISSING) is expected
    if op == "eq":
        return lambda a: json_equal(_get_path(a, path), want)
    if op == "neq":
        return lambda a: (v := _get_path(a, path)) is not _MISSING and not json_equal(v, want)
    if op == "in":
        return lambda a: any(json_equal(_get_path(a, path), w) for w in want)
    if op == "not_in":
        return lambda a: (v := _get_path(a, path)) is not _MISSING and not any(json_equal(v, w) for w in want)
    if op in {"lt", "lte", "gt", "gte"}:
        limit = float(want)
        compare: Callable[[float], bool] = {
            "lt": lambda v: v < limit,
            "lte": lambda v: v <= limit,
            "gt": lambda v: v > limit,
            "gte": lambda v: v >= limit,
        }[op]
        return lambda a: _is_number(v := _get_path(a, path)) and compare(v)
    if op == "regex":
        pattern = cond.pattern
        assert pattern is not None
        return lambda a: isinstance(v := _get_path(a, path), str) and pattern.search(v) is not None
    if op == "contains":

        def contains(a: Mapping[str, Any]) -> bool:
            v = _get_path(a, path)
            if isinstance(v, str):
                return isinstance(want, str) and want in v
            return isinstance(v, list) and any(json_equal(item, want) for item in v)

        return contains
    raise ValueError(f"unsupported operator {op!r}")


def _describe(cond: Condition) -> str:
    if cond.op == "exists":
        return f"{cond.path} must {'not ' if cond.value is False else ''}be present"
    value = cond.value if not isinstance(cond.value, str) else repr(cond.value)
    return f"{cond.path} {cond.op} {value}"


class Engine:
    """A compiled policy. Build one per load or reload; it holds no per-call state."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._hide_all = WILDCARD in policy.hide
        self._hidden = frozenset(policy.hide)
        self.pins: Mapping[str, str] = policy.pins()
        """Pinned tools and their definition hashes (checked by the router, intercept.pinning)."""
        self._counter_windows = self._counter_definitions(policy)
        self._any_of_groups = itertools.count(1)
        wildcard = policy.tools.get(WILDCARD)
        wildcard_rules = self._compile_rules(WILDCARD, wildcard.rules) if wildcard else ()
        self._plans: dict[str, _ToolPlan] = {}
        for tool, tool_policy in policy.tools.items():
            if tool == WILDCARD:
                continue
            self._plans[tool] = self._plan(self._compile_rules(tool, tool_policy.rules) + wildcard_rules)
        if policy.default == "deny":
            self._fallback = _ToolPlan(
                (), refused=Denial("default", "tool is not allowed by policy (default: deny)")
            )
        else:
            self._fallback = self._plan(wildcard_rules)
        self._hidden_plan = _ToolPlan((), refused=Denial("hide", "tool is hidden by policy"))
        self._shadow_rules = any(r.mode == "shadow" for t in policy.tools.values() for r in t.rules)

    @staticmethod
    def _counter_definitions(policy: Policy) -> dict[tuple[str, str], int]:
        windows: dict[tuple[str, str], int] = {}
        for tool, tool_policy in policy.tools.items():
            for rule in tool_policy.rules:
                if rule.state is not None:
                    windows[(counter_scope(tool), rule.state.counter)] = CALENDAR_SECONDS[rule.state.window]
        return windows

    @staticmethod
    def _plan(rules: tuple[_CompiledRule, ...]) -> _ToolPlan:
        return _ToolPlan(
            tuple(r for r in rules if not r.shadow),
            tuple(r for r in rules if r.shadow),
            needs_schema=any(r.required_args or r.schema for r in rules),
            touches_counters=any(r.rate or r.state_key or r.counter_conditions for r in rules),
            gated=any(r.approval_timeout for r in rules),
        )

    def _compile_rules(self, tool: str, rules: Sequence[Rule]) -> tuple[_CompiledRule, ...]:
        compiled: list[_CompiledRule] = []
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            label = rule.name if rule.name is not None else f"tools.{tool}.rules[{index}]"
            identity = label if label not in seen else f"{label}#{index}"
            seen.add(label)
            compiled.append(self._compile_rule(tool, rule, label, identity))
        return tuple(compiled)

    def _compile_rule(self, tool: str, rule: Rule, label: str, identity: str) -> _CompiledRule:
        arg_tests: list[tuple[ArgTest, str]] = []
        counter_conditions: list[_CounterCondition] = []
        for cond in rule.conditions:
            ref = cond.counter_ref
            if ref is None:
                arg_tests.append((_arg_test(cond), _describe(cond)))
                continue
            window = self._counter_windows.get(ref)
            if window is None:  # parse_policy rejects this; kept as a guard for hand-built policies
                raise ValueError(f"rule {label} reads undefined counter {ref[0]}.{ref[1]}")
            op: CheckOp = cond.op  # type: ignore[assignment]
            counter_conditions.append(
                _CounterCondition(f"counter:{ref[0]}:{ref[1]}", window, op, float(cond.value))
            )
        out = _CompiledRule(
            label=label,
            deny=rule.action == "deny",
            message=rule.denial_message,
            arg_tests=tuple(arg_tests),
            counter_conditions=tuple(counter_conditions),
            condition_text=" and ".join(_describe(c) for c in rule.conditions),
            any_of=next(self._any_of_groups) if rule.action == "deny" and len(counter_conditions) > 1 else 0,
            shadow=rule.mode == "shadow",
        )
        if rule.action == "require_approval":
            out.approval_timeout = rule.approval.timeout if rule.approval else APPROVAL_DEFAULT_TIMEOUT
        limit = rule.rate_limit
        if isinstance(limit, SlidingRateLimit):
            out.rate = CounterCheck(
                f"rate:{tool}:{identity}", "sliding", limit.window, 1.0, "lte", float(limit.max)
            )
            out.rate_text = f"rate limit of {limit.max} calls per {limit.window} s reached"
        elif isinstance(limit, CalendarRateLimit):
            out.rate = CounterCheck(
                f"rate:{tool}:{identity}", "calendar", limit.seconds, 1.0, "lte", float(limit.max)
            )
            out.rate_text = f"rate limit of {limit} reached"
        if rule.state is not None:
            out.state_key = f"counter:{counter_scope(tool)}:{rule.state.counter}"
            out.state_window = rule.state.seconds
            out.state_increment = float(rule.state.increment)
            if rule.state.increment_from is not None:
                out.state_from = tuple(rule.state.increment_from.split(".")[1:])
        if rule.validate_ is not None:
            out.required_args = rule.validate_.required_args
            out.schema = rule.validate_.schema_
        return out

    def _plan_for(self, tool: str) -> _ToolPlan:
        if self._hide_all or tool in self._hidden:
            return self._hidden_plan
        return self._plans.get(tool, self._fallback)

    def hides(self, tool: str) -> bool:
        return self._hide_all or tool in self._hidden

    def needs_schema(self, tool: str) -> bool:
        """True if deciding a call to `tool` reads its input schema (validate rules apply)."""
        return self._plan_for(tool).needs_schema

    def check(
        self, call: ToolCall, schemas: SchemaLookup
    ) -> Denial | list[tuple[CounterCheck, _CompiledRule]]:
        """The pure part of a decision: a denial, or the counter checks to reserve (maybe none)."""
        plan = self._plan_for(call.name)
        if plan.refused is not None:
            return plan.refused
        args = call.arguments
        increments: list[tuple[CounterCheck, _CompiledRule]] = []
        limited: list[tuple[CounterCheck, _CompiledRule]] = []
        for rule in plan.rules:
            denial = self._check_rule(rule, call, schemas, args, increments, limited)
            if denial is not None:
                return denial
        return increments + limited if increments else limited

    def _check_rule(
        self,
        rule: _CompiledRule,
        call: ToolCall,
        schemas: SchemaLookup,
        args: Mapping[str, Any],
        increments: list[tuple[CounterCheck, _CompiledRule]],
        limited: list[tuple[CounterCheck, _CompiledRule]],
    ) -> Denial | None:
        if rule.deny:
            if not all(test(args) for test, _ in rule.arg_tests):
                return None
            if not rule.counter_conditions:
                return Denial(rule.label, rule.message or "denied by policy")
            # The rule denies when every counter condition holds: the call passes if any negated
            # check admits, so they form one any-of group in the store's atomic check.
            for cc in rule.counter_conditions:
                negated = CounterCheck(
                    cc.key, "calendar", cc.window, 0.0, _NEGATED[cc.op], cc.value, rule.any_of
                )
                limited.append((negated, rule))
            return None
        if rule.approval_timeout and not all(test(args) for test, _ in rule.arg_tests):
            return None  # its conditions choose the calls it applies to
        for test, text in rule.arg_tests:
            if not test(args):
                return Denial(rule.label, rule.message or f"condition {text} does not hold")
        if rule.required_args or rule.schema:
            denial = self._validate(rule, call, schemas)
            if denial is not None:
                return denial
        if rule.state_key is not None:
            amount = rule.state_increment
            if rule.state_from is not None:
                raw = _get_path(args, rule.state_from)
                if not _is_number(raw) or not math.isfinite(raw) or raw < 0:
                    path = "args." + ".".join(rule.state_from)
                    return Denial(rule.label, f"{path} must be a non-negative number (it is counted)")
                amount = float(raw)
            increments.append((CounterCheck(rule.state_key, "calendar", rule.state_window, amount), rule))
        for cc in rule.counter_conditions:
            limited.append((CounterCheck(cc.key, "calendar", cc.window, 0.0, cc.op, cc.value), rule))
        if rule.rate is not None:
            limited.append((rule.rate, rule))
        return None

    @staticmethod
    def _validate(rule: _CompiledRule, call: ToolCall, schemas: SchemaLookup) -> Denial | None:
        learned = schemas.get(call.name)
        if learned is None:
            return Denial(
                rule.label, "the tool's input schema is unknown (the server does not list this tool)"
            )
        if rule.required_args:
            missing = [name for name in learned.required if name not in call.arguments]
            if missing:
                named = (
                    "missing required argument"
                    + ("s" if len(missing) > 1 else "")
                    + ": "
                    + ", ".join(missing)
                )
                return Denial(rule.label, f"{rule.message} ({named})" if rule.message else named)
        if rule.schema:
            error = learned.errors(call.arguments)
            if error is not None:
                return Denial(rule.label, f"{rule.message} ({error})" if rule.message else error)
        return None

    async def decide(
        self, call: ToolCall, store: CounterStore, now: float, schemas: SchemaLookup, fail_open: bool = False
    ) -> Decision:
        """Decide a call; an admitted call's counters are reserved and must be committed or rolled back.

        An admitted call also carries the verdicts of its `mode: shadow` rules (`would_deny`).
        A call a `require_approval` rule applies to (and not `approved`) reserves nothing: the answer
        is the denial it would get now, or the ApprovalNeed; decide it again, approved, once approved."""
        if not call.approved and (need := self.approval_needed(call)) is not None:
            return await self.preview(call, store, now, schemas) or need
        checked = self.check(call, schemas)
        if isinstance(checked, Denial):
            return checked
        admission = Admission(None)
        if checked:
            try:
                result = await store.reserve([check for check, _ in checked], now)
            except StateError as exc:
                # Stores redact credentials in their messages, so the cause is safe to log.
                logger.warning(
                    "counter store failed (%s); failing %s", exc, "open" if fail_open else "closed"
                )
                if not fail_open:
                    return STATE_DENIAL
                admission = Admission(None, "state-fail-open")
            else:
                if isinstance(result, Refusal):
                    return explain_refusal(checked, result)
                admission = Admission(result)
        if self._shadow_rules and self._plan_for(call.name).shadow_rules:
            # Read after the reservation, the counters already hold this call's increments.
            return replace(admission, would_deny=await self.shadow_verdicts(call, store, now, schemas))
        return admission

    def approval_needed(self, call: ToolCall) -> ApprovalNeed | None:
        """The first `require_approval` rule that applies to `call`, if any (pure)."""
        plan = self._plan_for(call.name)
        if not plan.gated:
            return None
        for rule in plan.rules:
            if rule.approval_timeout and all(test(call.arguments) for test, _ in rule.arg_tests):
                return ApprovalNeed(rule.label, rule.approval_timeout)
        return None

    async def preview(
        self, call: ToolCall, store: CounterStore, now: float, schemas: SchemaLookup
    ) -> Denial | None:
        """The denial `decide` would give now, reserving nothing: a call is put to a human only if
        every other rule admits it. Counters are read, not locked; `decide` runs again once approved."""
        checked = self.check(call, schemas)
        if isinstance(checked, Denial):
            return checked
        if not checked:
            return None
        try:
            refusal = await would_refuse(store, [check for check, _ in checked], now)
        except StateError as exc:
            logger.warning("counter store failed (%s) while previewing a call", exc)
            return STATE_DENIAL
        return explain_refusal(checked, refusal) if refusal is not None else None

    async def shadow_verdicts(
        self,
        call: ToolCall,
        store: CounterStore,
        now: float,
        schemas: SchemaLookup,
        unreserved: Sequence[CounterCheck] = (),
    ) -> tuple[Denial, ...]:
        """The denials the call's `mode: shadow` rules would give, in rule order; counters are only read.

        `unreserved`: this call's counter checks when they are not reserved in the store, so their
        increments are added to what the shadow rules' counter conditions read."""
        verdicts: list[Denial] = []
        for rule in self._plan_for(call.name).shadow_rules:
            limited: list[tuple[CounterCheck, _CompiledRule]] = []
            denial = self._check_rule(rule, call, schemas, call.arguments, [], limited)
            if denial is None and limited:
                try:
                    refusal = await would_refuse(store, [c for c, _ in limited], now, unreserved)
                except StateError as exc:
                    logger.warning("counter store failed (%s); shadow rule %s not evaluated", exc, rule.label)
                    continue
                if refusal is not None:
                    denial = explain_refusal(limited, refusal)
            if denial is not None:
                verdicts.append(denial)
        return tuple(verdicts)


STATE_DENIAL = Denial("state", "the counter store is unavailable, so the call is refused (fail closed)")


def explain_refusal(checked: Sequence[tuple[CounterCheck, _CompiledRule]], refusal: Refusal) -> Denial:
    """The denial for a store refusal of `checked` (as `Engine.check` returned them)."""
    check, rule = checked[refusal.index]
    if rule.deny:
        return Denial(rule.label, rule.message or f"condition {rule.condition_text} holds")
    if check is rule.rate:
        return Denial(rule.label, rule.message or rule.rate_text)
    projected = f"{refusal.projected:g}"
    return Denial(
        rule.label,
        rule.message or f"condition {rule.condition_text} does not hold (counter would be {projected})",
    )
