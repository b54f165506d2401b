"""The risk rules: each factor moves the level, a hand-set risk wins, and risk is not a copy of category."""

from __future__ import annotations

from typing import Any

from generator.catalog.load import classify_tool, load_registry
from generator.catalog.models import Category, Risk, Tool, ToolEntry
from generator.catalog.risk import BULK, FREE_FORM, OPEN_WORLD, PRODUCTION, SECRETS, assess
from generator.resources import registry_dir


def _tool(name: str, category: str, description: str = "", **fields: Any) -> Tool:
    return classify_tool(
        ToolEntry.model_validate({"name": name, "description": description, "category": category, **fields})
    )


def _props(**props: dict[str, Any]) -> dict[str, Any]:
    return {"input_schema": {"type": "object", "properties": props}}


def test_baseline_without_factors_follows_the_category() -> None:
    assert assess(_tool("list_items", "read")).level is Risk.LOW
    assert assess(_tool("update_item", "write")).level is Risk.MEDIUM
    assert assess(_tool("cancel_run", "execute")).level is Risk.HIGH
    assert assess(_tool("delete_item", "destructive")).level is Risk.HIGH
    assert assess(_tool("refund", "financial")).level is Risk.CRITICAL


def test_free_form_sql_raises_a_read_to_medium() -> None:
    tool = _tool("query", "read", **_props(sql={"type": "string"}))
    result = assess(tool)
    assert result.level is Risk.MEDIUM and [f.signal for f in result.factors] == [FREE_FORM]
    assert result.factors[0].detail.startswith("argument sql:")


def test_a_search_query_is_not_code() -> None:
    tool = _tool("search", "read", **_props(query={"type": "string", "description": "Search terms"}))
    assert assess(tool).level is Risk.LOW


def test_a_shell_command_raises_execute_to_critical() -> None:
    tool = _tool(
        "exec_in_pod",
        "execute",
        **_props(command={"type": "array", "description": "argv as an array of strings"}),
    )
    assert assess(tool).level is Risk.CRITICAL


def test_a_url_argument_or_open_world_hint_counts_once() -> None:
    url = _tool("fetch", "read", **_props(url={"type": "string", "format": "uri"}))
    both = _tool("fetch", "read", annotations={"openWorldHint": True}, **_props(url={"type": "string"}))
    hint = _tool("web_search", "read", annotations={"openWorldHint": True})
    for tool in (url, both, hint):
        result = assess(tool)
        assert result.level is Risk.MEDIUM and [f.signal for f in result.factors] == [OPEN_WORLD]


def test_bulk_scope_is_critical_and_one_item_is_high() -> None:
    assert assess(_tool("drop_database", "destructive")).level is Risk.CRITICAL
    assert assess(_tool("delete_all_items", "destructive")).level is Risk.CRITICAL
    assert assess(_tool("delete_item", "destructive")).level is Risk.HIGH
    bulk = assess(_tool("archive_items", "write", **_props(itemIds={"type": "array"})))
    assert bulk.level is Risk.HIGH and bulk.factors[0].signal == BULK


def test_a_production_environment_parameter_raises_a_change() -> None:
    env = {"type": "string", "enum": ["dev", "staging", "prod"]}
    assert assess(_tool("deploy", "execute", **_props(environment=env))).level is Risk.CRITICAL
    write = assess(_tool("set_flag", "write", **_props(environment=env)))
    assert write.level is Risk.HIGH and write.factors[0].signal == PRODUCTION
    # Reading from production changes nothing there.
    assert assess(_tool("list_runs", "read", **_props(environment=env))).level is Risk.LOW


def test_a_read_that_returns_secrets_is_high() -> None:
    result = assess(_tool("get-env", "read", "Returns all environment variables."))
    assert result.level is Risk.HIGH and result.factors[0].signal == SECRETS
    by_text = assess(_tool("show_config", "read", "Prints the stored API keys for debugging."))
    assert by_text.level is Risk.HIGH


def test_a_hand_set_risk_is_authoritative_with_its_reason() -> None:
    result = assess(_tool("drop_database", "destructive", risk="medium", risk_reason="drops a scratch copy"))
    assert result.level is Risk.MEDIUM and result.hand_set
    assert result.factors[0].detail == "drops a scratch copy"


def test_in_the_shipped_registry_risk_is_not_a_copy_of_category() -> None:
    tools = [t for s in load_registry(registry_dir()) for t in s.tools]
    high = {t.name for t in tools if assess(t).level is Risk.HIGH}
    execute = {t.name for t in tools if t.category is Category.EXECUTE}
    assert high != execute
    everything = load_registry(registry_dir()).by_slug("everything")
    assert everything is not None
    get_env = everything.tool("get-env")
    assert get_env is not None and assess(get_env).level is Risk.HIGH
