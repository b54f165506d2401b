"""The one place that maps a tool's category and risk to its recommended policy rules.

Every published form of a recommendation (tool page snippet, server policy file,
`intercept scaffold`, FAQ text, registry.json) is derived from `recommend()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.catalog.models import Category, Risk, Tool
from generator.catalog.risk import ProductionArgument, RiskAssessment, assess, production_arguments
from intercept.policy import Condition, Rule, SlidingRateLimit, ValidateSpec

WRITE_LIMIT = SlidingRateLimit(max=30, window=60)
"""Writes: 30 a minute sustains any interactive agent session yet caps a runaway loop at
1,800 changes an hour instead of unbounded; see docs/RECOMMENDATIONS.md."""

EXECUTE_LIMIT = SlidingRateLimit(max=10, window=60)
"""Jobs, deploys and runs cost real compute; 10 a minute is a human-scale pace."""


@dataclass(frozen=True, slots=True)
class Recommendation:
    """Rules for one tool plus the facts the site states about them."""

    tool: str
    category: Category
    risk: Risk
    rules: tuple[Rule, ...]
    pattern: str
    """One phrase naming the pattern: 'allow', 'allow, rate-limited', 'deny'."""
    assessment: RiskAssessment
    """How the risk level was reached: the category's baseline and each factor."""

    @property
    def denied(self) -> bool:
        return any(r.action == "deny" for r in self.rules)

    @property
    def rate_limit(self) -> SlidingRateLimit | None:
        for rule in self.rules:
            if isinstance(rule.rate_limit, SlidingRateLimit):
                return rule.rate_limit
        return None

    @property
    def requires_args(self) -> bool:
        return any(r.validate_ is not None and r.validate_.required_args for r in self.rules)

    @property
    def approval_rules(self) -> tuple[Rule, ...]:
        """The rules that hold a call for a human: those that target production."""
        return tuple(r for r in self.rules if r.action == "require_approval")

    @property
    def deny_reason(self) -> str | None:
        for rule in self.rules:
            if rule.action == "deny":
                return rule.denial_message
        return None


PATTERNS: dict[Category, str] = {
    Category.READ: "allow",
    Category.WRITE: "allow, rate-limited",
    Category.EXECUTE: "allow, rate-limited, required arguments checked",
    Category.DESTRUCTIVE: "deny",
    Category.FINANCIAL: "deny",
}


def deny_reason(tool: Tool, risk: Risk) -> str:
    what = "moves money" if tool.category is Category.FINANCIAL else "can destroy data or resources"
    return (
        f"{tool.name} {what} ({tool.category.value}, {risk.value} risk) and is blocked "
        "by policy; ask a human to run it, or allow it explicitly in the policy"
    )


APPROVAL_PATTERN = "production calls need approval"


def production_rules(tool: Tool) -> tuple[Rule, ...]:
    """One `require_approval` rule per argument that can point the call at production."""
    args = [a for a in production_arguments(tool.input_schema) if a.values]
    return tuple(_approval_rule(a, len(args) > 1) for a in args)


def _approval_rule(arg: ProductionArgument, several: bool) -> Rule:
    name = f"production needs approval ({arg.name})" if several else "production needs approval"
    condition = Condition(path=f"args.{arg.name}", op="in", value=list(arg.values))
    return Rule(name=name, action="require_approval", conditions=[condition])


def recommend(tool: Tool) -> Recommendation:
    category = tool.category
    assessment = assess(tool)
    if category is Category.READ:
        rules: tuple[Rule, ...] = (Rule(action="allow"),)
    elif category is Category.WRITE:
        rules = (Rule(action="allow", rate_limit=WRITE_LIMIT),)
    elif category is Category.EXECUTE:
        rules = (
            Rule.model_validate(
                {
                    "action": "allow",
                    "rate_limit": EXECUTE_LIMIT,
                    "validate": ValidateSpec(required_args=True),
                }
            ),
        )
    else:
        rules = (Rule(action="deny", reason=deny_reason(tool, assessment.level)),)
    pattern = PATTERNS[category]
    # Reads change nothing in production, and denied tools never get as far as a human.
    if category in {Category.WRITE, Category.EXECUTE} and (approvals := production_rules(tool)):
        rules += approvals
        pattern += f", {APPROVAL_PATTERN}"
    return Recommendation(
        tool=tool.name,
        category=category,
        risk=assessment.level,
        rules=rules,
        pattern=pattern,
        assessment=assessment,
    )
