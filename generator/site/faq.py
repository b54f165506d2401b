"""FAQ and explanatory text for tool and server pages, derived from the Recommendation object.

Every statement here is about what `intercept run` does with the recommended rules; the tests check
the statements against the engine. Text that depends on the tool's category or risk lives here too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from generator.catalog.models import CATEGORY_ORDER, Category, Server, Tool
from generator.catalog.recommend import Recommendation, recommend
from generator.catalog.risk import MEANING, production_arguments
from generator.site.usage import run_command
from intercept.policy import APPROVAL_DEFAULT_TIMEOUT

EXAMPLE_LIMIT_MAX = 10
EXAMPLE_LIMIT_WINDOW = 60


@dataclass(frozen=True, slots=True)
class QA:
    question: str
    answer: str


USAGE: dict[Category, str] = {
    Category.READ: "Agents call {tool} to look things up: it reads from {server} and changes nothing. "
    "Expect it early in a task, often many times in a row, while the agent gathers context.",
    Category.WRITE: "Agents call {tool} to change something in {server} on the user's behalf. "
    "It usually follows a few reads, once the agent has decided what to change.",
    Category.EXECUTE: "Agents call {tool} to start or control work in {server}: runs, jobs or deployments "
    "that use real compute. It tends to come at the end of a task, or in a retry loop "
    "when something fails.",
    Category.DESTRUCTIVE: "Agents reach for {tool} when a task seems to call for removing or irreversibly "
    "changing something in {server}, for example while cleaning up after a failure.",
    Category.FINANCIAL: "Agents call {tool} when a task involves money in {server}: charges, payments, "
    "refunds or transfers.",
}

WHY: dict[Category, str] = {
    Category.READ: "{tool} only reads, so the risk is low. It can still return sensitive data or run up API "
    "quotas in a loop; the recommended policy allows it and records every call, and you can "
    "add a rate limit if quotas matter.",
    Category.WRITE: "{tool} changes state in {server}. One call is usually harmless; a confused agent in a "
    "loop can make hundreds of changes a minute. The recommended policy allows it at "
    "{max} calls per {window} seconds, which no interactive session needs to exceed.",
    Category.EXECUTE: "{tool} starts or stops real work in {server}. A retry loop can launch jobs or cancel "
    "the wrong ones faster than anyone can react. The recommended policy allows {max} "
    "calls per {window} seconds and refuses calls that omit a required argument, so the "
    "agent cannot act on a default it did not choose.",
    Category.DESTRUCTIVE: "{tool} can destroy data or resources in {server}, and an undo may not exist. The "
    "recommended policy blocks it outright; a person can run it, or you can allow it "
    "explicitly once you have decided when an agent may.",
    Category.FINANCIAL: "{tool} moves money through {server}. Mistakes cost real money and may not be "
    "reversible, so the recommended policy blocks it; allow it explicitly, with limits, "
    "only if an agent must handle payments.",
}


def _fill(template: str, tool: Tool, server: Server, rec: Recommendation) -> str:
    limit = rec.rate_limit
    return template.format(
        tool=tool.name,
        server=server.name,
        max=limit.max if limit else EXAMPLE_LIMIT_MAX,
        window=limit.window if limit else EXAMPLE_LIMIT_WINDOW,
    )


def usage_text(tool: Tool, server: Server, rec: Recommendation) -> str:
    return _fill(USAGE[rec.category], tool, server, rec)


def why_text(tool: Tool, server: Server, rec: Recommendation) -> str:
    return _fill(WHY[rec.category], tool, server, rec)


def _per(window: int) -> str:
    return {60: "minute", 3600: "hour", 86400: "day"}.get(window, f"{window} seconds")


def rate_limit_answer(tool: Tool, rec: Recommendation) -> str:
    limit = rec.rate_limit
    if limit is not None:
        return (
            f"Yes, and the recommended policy already does: rate_limit with max: {limit.max} and "
            f"window: {limit.window} lets through at most {limit.max} calls to {tool.name} in any "
            f"{limit.window}-second window ({limit.max} calls per {_per(limit.window)}). The proxy denies "
            f"call number {limit.max + 1} inside that window without forwarding it, and admits calls again "
            "as older ones leave the window. Denied and failed calls use up none of the limit."
        )
    if rec.denied:
        return (
            f"It can, but the recommended policy blocks {tool.name} entirely instead. To allow it at a "
            f"limited rate, replace the deny rule with action: allow and rate_limit with "
            f"max: {EXAMPLE_LIMIT_MAX} and window: {EXAMPLE_LIMIT_WINDOW}; the proxy then admits "
            f"{EXAMPLE_LIMIT_MAX} calls in any {EXAMPLE_LIMIT_WINDOW} seconds and denies the "
            f"{EXAMPLE_LIMIT_MAX + 1}th."
        )
    return (
        f"Yes. The recommended policy allows {tool.name} without a limit because it only reads. Add "
        f"rate_limit with max: {EXAMPLE_LIMIT_MAX} and window: {EXAMPLE_LIMIT_WINDOW} to its rule and the "
        f"proxy admits {EXAMPLE_LIMIT_MAX} calls in any {EXAMPLE_LIMIT_WINDOW} seconds and denies the "
        f"{EXAMPLE_LIMIT_MAX + 1}th."
    )


def block_answer(tool: Tool, rec: Recommendation) -> str:
    hide = (
        f" To also remove it from the tool list the agent sees, add {tool.name} to the policy's hide list; "
        "a hidden tool is refused if called anyway."
    )
    if rec.denied:
        return (
            f"The recommended policy already blocks it: its only rule is action: deny, so the proxy refuses "
            f"every call to {tool.name} and never forwards it to the server. The agent receives an error "
            f"result that gives the reason: {rec.deny_reason}." + hide
        )
    return (
        f"Replace its rules with a single rule, action: deny, and a reason. The proxy then refuses every "
        f"call to {tool.name} with that reason and never forwards it to the server." + hide
    )


def _values(values: list[str]) -> str:
    quoted = [f'"{v}"' for v in values]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 2 else quoted)


def approval_answer(tool: Tool, rec: Recommendation) -> str:
    """Which calls a human must approve, how the human is asked, and what a timeout does."""
    if not rec.approval_rules:
        return ""
    free_text = {a.name for a in production_arguments(tool.input_schema) if a.free_text}
    text = ""
    for rule in rec.approval_rules:
        [condition] = rule.conditions
        arg = condition.path.removeprefix("args.")
        values = [str(v) for v in condition.value] if isinstance(condition.value, list) else []
        text += (
            f" A human must approve each call to {tool.name} whose {arg} argument is {_values(values)} "
            "(it targets production); calls with another value, or without the argument, need no approval."
        )
        if arg in free_text:
            text += f" {arg} is free text, so other spellings of production are not caught."
    timeouts = sorted(
        {r.approval.timeout if r.approval else APPROVAL_DEFAULT_TIMEOUT for r in rec.approval_rules}
    )
    return text + (
        " The proxy asks the client's user when the client supports elicitation; otherwise the call "
        "waits until someone runs intercept approvals grant with the approval ID the proxy prints. A "
        f"call still undecided after {' or '.join(map(str, timeouts))} seconds is denied."
    )


def enforce_answer(tool: Tool, server: Server, rec: Recommendation, file_name: str) -> str:
    checks = []
    if rec.denied:
        checks.append("refuses the call")
    else:
        checks.append("admits the call")
        if rec.rate_limit is not None:
            checks.append(f"at most {rec.rate_limit.max} times per {rec.rate_limit.window} seconds")
        if rec.requires_args:
            checks.append("and only when every required argument is present")
    return (
        f"Save the recommended policy as {file_name} and start the server through Intercept: "
        f"{run_command(server, file_name)}. Intercept sits between the agent and "
        f"{server.name} and checks every call to {tool.name} before it reaches the server; with the "
        f"recommended rules it {' '.join(checks)}." + approval_answer(tool, rec)
    )


def tool_faq(tool: Tool, server: Server, rec: Recommendation, file_name: str) -> list[QA]:
    return [
        QA(
            f"What does the {tool.name} tool do?",
            f"{tool.one_line} It is {_article(rec.category.value)} {rec.category.value} tool of the "
            f"{server.name} MCP server.",
        ),
        QA(f"How do I enforce a policy on {tool.name}?", enforce_answer(tool, server, rec, file_name)),
        QA(f"What is the risk level of {tool.name}?", risk_answer(tool, rec)),
        QA(f"Can {tool.name} be rate-limited?", rate_limit_answer(tool, rec)),
        QA(f"How do I block {tool.name} completely?", block_answer(tool, rec)),
        QA(
            f"Which MCP server provides {tool.name}?",
            f"The {server.name} MCP server ({server.run.package_manager} package {server.run.package}, "
            f"version {server.run.version}), which has {len(server.tools)} "
            f"tool{'s' if len(server.tools) != 1 else ''}.",
        ),
    ]


def risk_answer(tool: Tool, rec: Recommendation) -> str:
    """The level, what it means, and what set it: the hand-set reason or each factor found."""
    assessment = rec.assessment
    head = (
        f"{rec.risk.value.capitalize()}: {MEANING[rec.risk][0].lower()}{MEANING[rec.risk][1:]} It is "
        f"{_article(rec.category.value)} {rec.category.value} tool"
    )
    if assessment.hand_set:
        why = f"; its risk is set by hand in the registry: {assessment.factors[0].detail}."
    elif assessment.factors:
        found = "; ".join(f"{f.signal} ({f.detail})" for f in assessment.factors)
        why = f" (baseline {assessment.baseline.value}), raised by: {found}."
    else:
        why = f", and no risk factor raises it above the {assessment.baseline.value} baseline."
    return head + why + f" The recommended pattern is: {rec.pattern}."


def _counted(counts: Counter[Category]) -> str:
    parts = [f"{counts[c]} {c.value}" for c in CATEGORY_ORDER if counts[c]]
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 2 else parts)


def _tools(count: int) -> str:
    return f"{count} tool{'' if count == 1 else 's'}"


def block_summary(server: Server) -> str:
    """What the recommended policy does to the server's tools, from the actual recommendations."""
    recs = [recommend(t) for t in server.tools]
    denied = Counter(r.category for r in recs if r.denied)
    limited = Counter(r.category for r in recs if not r.denied and r.rate_limit is not None)
    free = Counter(r.category for r in recs if not r.denied and r.rate_limit is None)
    total = len(recs)
    parts = []
    if denied:
        parts.append(f"denies {sum(denied.values())} of {total} tools outright ({_counted(denied)})")
    else:
        parts.append(f"denies none of its {total} tools")
    if limited:
        parts.append(f"rate-limits {_tools(sum(limited.values()))} ({_counted(limited)})")
    if free:
        parts.append(f"allows {_tools(sum(free.values()))} without a limit ({_counted(free)})")
    text = "It " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] + "."
    if any(r.requires_args for r in recs):
        checked = sum(1 for r in recs if r.requires_args)
        text += f" For {_tools(checked)} it also refuses calls that omit a required argument."
    if gated := sum(1 for r in recs if r.approval_rules):
        text += f" For {_tools(gated)} a human must approve each call that targets production."
    return text


def server_faq(server: Server, file_name: str) -> list[QA]:
    return [
        QA(
            f"How do I put a policy on the {server.name} MCP server?",
            f"Download {file_name}, check it with intercept validate -c {file_name}, and start the server "
            f"with {run_command(server, file_name)}. Every tool call then passes through Intercept's "
            "policy checks before it reaches the server.",
        ),
        QA(f"What does the recommended {server.name} policy block?", block_summary(server)),
        QA(
            "Is this the same policy that intercept scaffold prints?",
            f"Yes. intercept scaffold {server.slug} prints this file byte for byte, and intercept scaffold "
            f"{server.slug} --default deny prints the strict variant; all come from the same recommendation "
            "code.",
        ),
        QA(
            "What happens to tools the policy does not list?",
            "The recommended file sets default: allow, so a tool the server adds later is allowed until you "
            "list it. The strict variant sets default: deny and refuses every tool the policy does not name.",
        ),
    ]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
