"""The FAQ's claims, checked against the real policy engine (intercept.engine) with the memory store."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

from generator.catalog.load import load_registry
from generator.catalog.models import Category, Server, Tool
from generator.catalog.policyfile import policy_file_name, render_policy_file, tool_snippet
from generator.catalog.recommend import recommend
from generator.resources import registry_dir
from generator.site.faq import (
    EXAMPLE_LIMIT_MAX,
    EXAMPLE_LIMIT_WINDOW,
    block_summary,
    tool_faq,
    usage_text,
    why_text,
)
from intercept.engine import Admission, ApprovalNeed, Denial, Engine, ToolCall, ToolSchema
from intercept.policy import load_policy_text
from intercept.state.memory import MemoryStore
from tests.unit.generator.site.site_support import SMALL_REGISTRY


def _tool(slug: str, name: str) -> tuple[Server, Tool]:
    server = load_registry(SMALL_REGISTRY).by_slug(slug)
    assert server is not None
    tool = server.tool(name)
    assert tool is not None
    return server, tool


async def _admitted_in_a_row(
    policy_text: str, tool: Tool, arguments: dict[str, object], calls: int
) -> list[bool]:
    engine = Engine(load_policy_text(policy_text))
    store = MemoryStore()
    schemas = {tool.name: ToolSchema.learn(tool.input_schema)}
    out = []
    for i in range(calls):
        decision = await engine.decide(ToolCall(tool.name, arguments), store, 1000.0 + i, schemas)
        if isinstance(decision, Admission) and decision.reservation is not None:
            await store.commit(decision.reservation)
        out.append(isinstance(decision, Admission))
    return out


def _answer(server: Server, tool: Tool, starts: str) -> str:
    faq = tool_faq(tool, server, recommend(tool), policy_file_name(server))
    assert len(faq) == 6
    return next(qa.answer for qa in faq if qa.question.startswith(starts))


async def test_rate_limit_answer_max_10_window_60_denies_the_11th_call() -> None:
    server, tool = _tool("acme-jobs", "cancel_run")
    answer = _answer(server, tool, "Can ")
    match = re.search(r"max: (\d+) and window: (\d+)", answer)
    assert match is not None
    limit, window = int(match.group(1)), int(match.group(2))
    assert (limit, window) == (10, 60)
    assert f"denies call number {limit + 1}" in answer
    admitted = await _admitted_in_a_row(tool_snippet(tool), tool, {"runId": "run_1"}, limit + 1)
    assert admitted == [True] * limit + [False]
    # Once the first call leaves the window, one more is admitted, as the answer says.
    engine = Engine(load_policy_text(tool_snippet(tool)))
    store = MemoryStore()
    schemas = {tool.name: ToolSchema.learn(tool.input_schema)}
    for i in range(limit):
        decision = await engine.decide(ToolCall(tool.name, {"runId": "r"}), store, 1000.0 + i, schemas)
        assert isinstance(decision, Admission) and decision.reservation is not None
        await store.commit(decision.reservation)
    call = ToolCall(tool.name, {"runId": "r"})
    assert isinstance(await engine.decide(call, store, 1000.0 + window - 1, schemas), Denial)
    assert isinstance(await engine.decide(call, store, 1000.0 + window + 0.5, schemas), Admission)


async def test_rate_limit_example_for_a_read_tool_is_true() -> None:
    server, tool = _tool("acme-jobs", "list_runs")
    answer = _answer(server, tool, "Can ")
    assert f"max: {EXAMPLE_LIMIT_MAX} and window: {EXAMPLE_LIMIT_WINDOW}" in answer
    text = (
        f"tools:\n  {tool.name}:\n    rules:\n      - action: allow\n        rate_limit:\n"
        f"          max: {EXAMPLE_LIMIT_MAX}\n          window: {EXAMPLE_LIMIT_WINDOW}\n"
    )
    admitted = await _admitted_in_a_row(text, tool, {}, EXAMPLE_LIMIT_MAX + 1)
    assert admitted == [True] * EXAMPLE_LIMIT_MAX + [False]


async def test_required_args_claim_holds_for_execute_tools() -> None:
    server, tool = _tool("acme-jobs", "cancel_run")
    assert "required argument" in _answer(server, tool, "How do I enforce")
    assert await _admitted_in_a_row(tool_snippet(tool), tool, {}, 1) == [False]


async def test_block_answer_for_a_denied_tool_matches_the_engine_denial() -> None:
    server, tool = _tool("acme-jobs", "delete_project")
    rec = recommend(tool)
    answer = _answer(server, tool, "How do I block")
    assert rec.deny_reason is not None and rec.deny_reason in answer
    engine = Engine(load_policy_text(render_policy_file(server)))
    decision = await engine.decide(ToolCall(tool.name, {"projectRef": "p"}), MemoryStore(), 0.0, {})
    assert isinstance(decision, Denial)
    assert rec.deny_reason in decision.text


async def test_hide_claim_in_block_answer_holds() -> None:
    server, tool = _tool("paybox", "get_balance")
    answer = _answer(server, tool, "How do I block")
    assert "hide" in answer
    engine = Engine(load_policy_text(f"hide: [{tool.name}]\n"))
    assert engine.hides(tool.name)
    decision = await engine.decide(ToolCall(tool.name, {}), MemoryStore(), 0.0, {})
    assert isinstance(decision, Denial)


async def test_default_allow_claim_in_server_faq() -> None:
    server, _ = _tool("paybox", "get_balance")
    engine = Engine(load_policy_text(render_policy_file(server)))
    decision = await engine.decide(ToolCall("a_tool_added_later", {}), MemoryStore(), 0.0, {})
    assert isinstance(decision, Admission)
    strict = Engine(load_policy_text(render_policy_file(server, default="deny")))
    assert isinstance(await strict.decide(ToolCall("a_tool_added_later", {}), MemoryStore(), 0.0, {}), Denial)


def test_text_is_specific_to_category_and_risk() -> None:
    registry = load_registry(SMALL_REGISTRY)
    seen: dict[Category, str] = {}
    for server in registry:
        for tool in server.tools:
            rec = recommend(tool)
            why = why_text(tool, server, rec)
            assert tool.name in why and tool.name in usage_text(tool, server, rec)
            if rec.rate_limit is not None:
                assert f"{rec.rate_limit.max} calls per {rec.rate_limit.window} seconds" in why
            seen[rec.category] = why.replace(tool.name, "T").replace(server.name, "S")
    assert len(set(seen.values())) == len(seen) == len(Category)


def _category_counts(text: str) -> dict[str, int]:
    return {cat: int(n) for n, cat in re.findall(r"(\d+) (read|write|execute|destructive|financial)", text)}


async def test_block_summary_states_the_engines_counts_for_every_server() -> None:
    servers = [*load_registry(SMALL_REGISTRY), load_registry(registry_dir()).by_slug("trigger-dev")]
    for server in servers:
        assert server is not None
        text = block_summary(server)
        engine = Engine(load_policy_text(render_policy_file(server)))
        denied: Counter[str] = Counter()
        limited: Counter[str] = Counter()
        free: Counter[str] = Counter()
        for tool in server.tools:
            args = dict.fromkeys(tool.required_params, "x")
            schemas = {tool.name: ToolSchema.learn(tool.input_schema)}
            decision = await engine.decide(ToolCall(tool.name, args), MemoryStore(), 0.0, schemas)
            rules = engine.policy.tools[tool.name].rules
            if isinstance(decision, Denial):
                denied[tool.category.value] += 1
            elif any(r.rate_limit is not None for r in rules):
                limited[tool.category.value] += 1
            else:
                free[tool.category.value] += 1
        sentences = dict(
            (kind, part)
            for part in re.split(r", | and (?=[a-z]+s )", text.split(".")[0])
            for kind in ("denies", "rate-limits", "allows")
            if kind in part
        )
        if denied:
            head = f"denies {sum(denied.values())} of {len(server.tools)} tools outright"
            assert head in sentences["denies"], text
            assert _category_counts(sentences["denies"]) == dict(denied), text
        else:
            assert f"denies none of its {len(server.tools)} tools" in text
        if limited:
            assert _category_counts(sentences["rate-limits"]) == dict(limited), text
        if free:
            assert _category_counts(sentences["allows"]) == dict(free), text


def test_the_trigger_dev_summary_names_no_financial_tools() -> None:
    server = load_registry(registry_dir()).by_slug("trigger-dev")
    assert server is not None
    assert not any(t.category is Category.FINANCIAL for t in server.tools)
    assert "financial" not in block_summary(server)


_HELD = re.compile(r'whose (\w+) argument is ((?:"[^"]+"(?:, | or )?)+) \(it targets production\)')


def _held_values(answer: str) -> tuple[str, list[str]]:
    match = _HELD.search(answer)
    assert match is not None, answer
    return match.group(1), re.findall(r'"([^"]+)"', match.group(2))


async def _decide(engine: Engine, tool: Tool, arguments: Mapping[str, object]) -> object:
    schemas = {tool.name: ToolSchema.learn(tool.input_schema)}
    return await engine.decide(ToolCall(tool.name, arguments), MemoryStore(), 0.0, schemas)


async def test_approval_answer_names_the_calls_the_engine_holds_and_its_timeout() -> None:
    server = load_registry(registry_dir()).by_slug("trigger-dev")
    assert server is not None
    engine = Engine(load_policy_text(render_policy_file(server)))
    gated = [t for t in server.tools if recommend(t).approval_rules]
    assert {"trigger_task", "deploy", "cancel_run"} <= {t.name for t in gated}
    for tool in gated:
        answer = _answer(server, tool, "How do I enforce")
        arg, values = _held_values(answer)
        timeout = re.search(r"undecided after (\d+) seconds is denied", answer)
        assert timeout is not None and "elicitation" in answer and "intercept approvals grant" in answer
        base = {name: "x" for name in tool.required_params if name != arg}
        for value in values:
            held = await _decide(engine, tool, {**base, arg: value})
            assert isinstance(held, ApprovalNeed), tool.name
            assert held.timeout == int(timeout.group(1))
        enum = tool.input_schema["properties"][arg]["enum"]
        for other in (v for v in enum if v not in values):
            assert isinstance(await _decide(engine, tool, {**base, arg: other}), Admission), tool.name
        if arg not in tool.required_params:
            assert isinstance(await _decide(engine, tool, base), Admission), tool.name


async def test_approval_answer_for_free_text_says_which_spellings_are_caught() -> None:
    schema = {"type": "object", "properties": {"target": {"type": "string", "description": "prod or dev"}}}
    tool = Tool.model_validate(
        {"name": "ship", "description": "Ship it.", "category": "execute", "input_schema": schema}
    )
    server, _ = _tool("acme-jobs", "cancel_run")
    answer = _answer(server, tool, "How do I enforce")
    assert _held_values(answer) == ("target", ["prod", "production"])
    assert "other spellings of production are not caught" in answer
    engine = Engine(load_policy_text(tool_snippet(tool)))
    assert isinstance(await _decide(engine, tool, {"target": "production"}), ApprovalNeed)
    assert isinstance(await _decide(engine, tool, {"target": "PROD"}), Admission)


async def test_block_summary_counts_the_tools_the_engine_holds_for_production() -> None:
    server = load_registry(registry_dir()).by_slug("trigger-dev")
    assert server is not None
    engine = Engine(load_policy_text(render_policy_file(server)))
    held = 0
    for tool in server.tools:
        props = tool.input_schema.get("properties", {})
        if "prod" in props.get("environment", {}).get("enum", []):
            args = {**dict.fromkeys(tool.required_params, "x"), "environment": "prod"}
            held += isinstance(await _decide(engine, tool, args), ApprovalNeed)
    assert held > 0
    assert f"For {held} tools a human must approve each call that targets production." in block_summary(
        server
    )


def test_approval_answer_names_each_argument_and_calls_only_free_text_free_text() -> None:
    props = {
        "stage": {"type": "string", "enum": ["dev", "prod", "production"]},
        "region": {"type": "string", "description": "prod-eu or staging"},
    }
    tool = Tool.model_validate(
        {
            "name": "ship",
            "description": "Ship it.",
            "category": "write",
            "input_schema": {"type": "object", "properties": props},
        }
    )
    server, _ = _tool("acme-jobs", "cancel_run")
    answer = _answer(server, tool, "How do I enforce")
    assert 'whose stage argument is "prod" or "production"' in answer
    assert 'whose region argument is "prod" or "production"' in answer
    assert "stage is free text" not in answer and "region is free text" in answer
    assert answer.count("elicitation") == 1
    rules = load_policy_text(tool_snippet(tool)).tools["ship"].rules
    assert [r.name for r in rules if r.action == "require_approval"] == [
        "production needs approval (stage)",
        "production needs approval (region)",
    ]
