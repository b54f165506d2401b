"""The classifier's signals one at a time, how they combine, and its agreement with hand labels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.classifier_eval import evaluate, load_labels
from generator.catalog.classify import classify, name_tokens
from generator.catalog.lexicon import verb_category
from generator.catalog.load import classify_tool, load_server_file
from generator.catalog.models import CURATED_SIGNAL, Category, Risk, Tool, ToolEntry
from generator.catalog.risk import assess

READ_ONLY = {"readOnlyHint": True}
DESTRUCTIVE_HINT = {"readOnlyHint": False, "destructiveHint": True}


@pytest.mark.parametrize(
    ("name", "tokens"),
    [
        ("createPaymentLink", ["create", "payment", "link"]),
        ("create_payment_link", ["create", "payment", "link"]),
        ("API-post-search", ["api", "post", "search"]),
        ("kubectl.get", ["kubectl", "get"]),
        ("getHTTPStatus2", ["get", "http", "status", "2"]),
    ],
)
def test_name_tokens_split_every_naming_style(name: str, tokens: list[str]) -> None:
    assert name_tokens(name) == tokens


@pytest.mark.parametrize(
    ("word", "category"),
    [
        ("deletes", Category.DESTRUCTIVE),
        ("deleted", Category.DESTRUCTIVE),
        ("deleting", Category.DESTRUCTIVE),
        ("lists", Category.READ),
        ("retries", Category.EXECUTE),
        ("creating", Category.WRITE),
        ("refunds", Category.FINANCIAL),
        ("frobnicate", None),
    ],
)
def test_verb_inflections_map_to_their_base_verb(word: str, category: Category | None) -> None:
    assert verb_category(word) == category


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("list_widgets", Category.READ),
        ("get_widget", Category.READ),
        ("search_widgets", Category.READ),
        ("create_widget", Category.WRITE),
        ("update_widget", Category.WRITE),
        ("run_widget_job", Category.EXECUTE),
        ("deploy_service", Category.EXECUTE),
        ("delete_widget", Category.DESTRUCTIVE),
        ("drop_table", Category.DESTRUCTIVE),
        ("purge_cache", Category.DESTRUCTIVE),
        ("refund_order", Category.FINANCIAL),
        ("transfer_funds", Category.FINANCIAL),
    ],
)
def test_the_name_verb_alone_decides_a_tool_without_other_signals(name: str, category: Category) -> None:
    result = classify(name)
    assert result.category is category
    assert result.evidence[0].signal == "name"


def test_the_first_verb_in_the_name_outweighs_later_ones() -> None:
    result = classify("list_deleted_widgets")
    assert result.category is Category.READ
    weights = {e.detail: e.weight for e in result.evidence}
    assert weights["the name starts its action with 'list'"] > weights["the name also contains 'deleted'"]


def test_a_description_verb_classifies_a_tool_whose_name_has_none() -> None:
    result = classify("widgets", "Deletes every widget in the workspace.")
    assert result.category is Category.DESTRUCTIVE
    assert any(e.signal == "description" and "delete" in e.detail for e in result.evidence)


def test_leading_filler_in_a_description_is_skipped() -> None:
    assert classify("widget_tool", "This tool allows you to create a widget.").category is Category.WRITE
    assert classify("widget_tool", "Use this tool to list widgets.").category is Category.READ


def test_an_enumeration_of_actions_takes_the_most_dangerous() -> None:
    result = classify("widget_tabs", "List, create, close, or delete browser tabs.")
    assert result.category is Category.DESTRUCTIVE
    assert "most dangerous is 'delete'" in result.evidence[0].detail or any(
        "most dangerous is 'delete'" in e.detail for e in result.evidence
    )


def test_a_write_that_says_it_overwrites_existing_data_is_destructive() -> None:
    result = classify("write_file", "Create a new file or completely overwrite an existing file.")
    assert result.category is Category.DESTRUCTIVE
    assert any(e.signal == "data-loss" for e in result.evidence)


def test_a_write_without_data_loss_words_stays_a_write() -> None:
    assert classify("write_file", "Create a new file with the given content.").category is Category.WRITE


def test_schema_fields_that_carry_code_signal_execute() -> None:
    schema = {"type": "object", "properties": {"command": {"type": "string"}}}
    result = classify("shell_helper", "", schema)
    assert result.category is Category.EXECUTE
    assert any(e.signal == "schema" and "'command'" in e.detail for e in result.evidence)


def test_a_query_field_is_code_only_when_it_is_sql() -> None:
    search = {"type": "object", "properties": {"query": {"type": "string", "description": "Words to find"}}}
    sql = {"type": "object", "properties": {"query": {"type": "string", "description": "The SQL statement"}}}
    assert not any(e.signal == "schema" for e in classify("lookup", "", search).evidence)
    assert any(e.signal == "schema" for e in classify("lookup", "", sql).evidence)


def test_money_fields_make_a_state_change_financial() -> None:
    schema = {"type": "object", "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}}}
    result = classify("create_transfer_request", "Sends funds to a recipient.", schema)
    assert result.category is Category.FINANCIAL
    assert "risk" not in result.as_json()


def test_reading_money_objects_stays_read() -> None:
    assert classify("list_invoices", "Lists invoices.").category is Category.READ
    assert classify("retrieve_balance", "Retrieves the balance.").category is Category.READ


@pytest.mark.parametrize(
    "name",
    [
        "create_refund",
        "cancel_subscription",
        "create_payment_link",
        "finalize_invoice",
        "update_subscription",
    ],
)
def test_changing_a_money_object_is_financial(name: str) -> None:
    result = classify(name)
    assert result.category is Category.FINANCIAL
    assert any(e.signal == "money" for e in result.evidence)


def test_a_read_only_hint_decides_when_nothing_names_a_change() -> None:
    hinted_read = classify("frobnicate", "", None, READ_ONLY)
    assert hinted_read.category is Category.READ
    assert any(e.signal == "annotation" and "readOnlyHint" in e.detail for e in hinted_read.evidence)
    # A write verb in the name alone is no change named: OpenAPI and router names carry such verbs.
    assert classify("generate_feedback_link", "", None, READ_ONLY).category is Category.READ
    # The description naming a change, or a name whose action is more than a write, keeps the category.
    assert (
        classify("select_page", "Select a page as the context.", None, READ_ONLY).category is Category.WRITE
    )
    assert classify("start_dev_server", "", None, READ_ONLY).category is Category.EXECUTE
    assert classify("delete_widget", "", None, READ_ONLY).category is Category.DESTRUCTIVE


def test_a_destructive_hint_never_ends_in_read() -> None:
    hinted = classify("frobnicate", "", None, DESTRUCTIVE_HINT)
    assert hinted.category is Category.WRITE
    navigate = classify("browser_navigate", "Navigate to a URL", None, DESTRUCTIVE_HINT)
    assert navigate.category is Category.WRITE
    assert any(e.signal == "annotation" and "destructiveHint" in e.detail for e in navigate.evidence)
    # Both hints at once: the destructive one wins, since read-only cannot be trusted over it.
    both = classify("list_widgets", "Lists widgets.", None, {"readOnlyHint": True, "destructiveHint": True})
    assert both.category is Category.WRITE


def test_a_tie_never_resolves_to_read() -> None:
    # 'get' in the name against 'delete' in the description: equal weight, the more dangerous wins.
    result = classify("widget", "Get or delete a widget.")
    scores = {c: sum(e.weight for e in result.evidence if e.category is c) for c in Category}
    assert result.category is not Category.READ
    tied = classify(
        "frobnicate", "", {"type": "object", "properties": {"sql": {}, "force": {}, "confirm": {}}}
    )
    assert tied.category is not Category.READ
    assert scores[Category.READ] <= max(scores.values())


@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("place_order", "Place a buy or sell order for a stock."),
        ("place_trade", "Places a trade on the exchange."),
        ("sell_stock", "Sell shares of a stock at market price."),
        ("swap_tokens", "Swap one token for another on a DEX."),
        ("execute_trade", "Execute a trade."),
        ("stake_tokens", ""),
    ],
)
def test_trading_is_financial(name: str, description: str) -> None:
    assert classify(name, description).category is Category.FINANCIAL


def test_swapping_things_that_are_not_assets_is_a_write() -> None:
    assert classify("swap_panes", "Swap two panes.").category is Category.WRITE
    assert classify("list_orders", "Lists orders.").category is Category.READ


@pytest.mark.parametrize(
    ("name", "description", "category"),
    [
        ("git_push", "Updates remote refs using local refs.", Category.EXECUTE),
        ("docker_push", "", Category.EXECUTE),
        ("push", "", Category.EXECUTE),
        ("push_files", "Push several files to a repository in one commit.", Category.WRITE),
        ("docker_compose_down", "Tear down a compose project.", Category.DESTRUCTIVE),
        ("stack_down", "", Category.DESTRUCTIVE),
        ("docker_compose_up", "", Category.EXECUTE),
        ("look_up", "", Category.READ),
        ("recreate_container", "Recreate a container with the same configuration.", Category.DESTRUCTIVE),
        ("reimage_node", "", Category.DESTRUCTIVE),
    ],
)
def test_publishing_tearing_down_and_recreating(name: str, description: str, category: Category) -> None:
    assert classify(name, description).category is category


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("firecrawl_monitor_create", Category.WRITE),
        ("firecrawl_monitor_update", Category.WRITE),
        ("firecrawl_monitor_run", Category.EXECUTE),
        ("firecrawl_monitor_delete", Category.DESTRUCTIVE),
        ("firecrawl_monitor_list", Category.READ),
        ("monitor_checks", Category.READ),
        ("search_docs", Category.READ),
        ("comment_delete", Category.DESTRUCTIVE),
    ],
)
def test_a_noun_that_is_also_a_verb_gives_way_to_the_names_last_verb(name: str, category: Category) -> None:
    result = classify(name)
    assert result.category is category


def test_hovering_is_page_interaction_so_a_write() -> None:
    for name, description in [
        ("browser_hover", "Hover over element on page"),
        ("puppeteer_hover", "Hover an element on the page"),
        ("hover", "Hover over the provided element"),
    ]:
        assert classify(name, description).category is Category.WRITE, name


def test_a_write_that_runs_code_is_execute() -> None:
    interact = classify(
        "firecrawl_interact",
        "Open or reuse a live browser session to navigate a page, click controls, fill fields, or run "
        "browser code.",
    )
    assert interact.category is Category.EXECUTE
    assert any("run browser code" in e.detail for e in interact.evidence)
    runs_jobs = classify("update_pipeline", "Update a pipeline and run the pipeline's tests.")
    assert runs_jobs.category is Category.WRITE


def test_a_multi_action_tool_gets_its_most_dangerous_operation() -> None:
    described = {
        "type": "object",
        "properties": {
            "operation": {
                "type": "string",
                "description": "Operation to perform: generate, deploy, describe, or delete.",
            }
        },
    }
    result = classify("manage_eks_stacks", "Manage EKS CloudFormation stacks.", described)
    assert result.category is Category.DESTRUCTIVE
    assert any("'delete'" in e.detail and e.signal == "schema" for e in result.evidence)
    enumerated = {"type": "object", "properties": {"action": {"enum": ["list", "deploy", "describe"]}}}
    assert classify("manage_stacks", "", enumerated).category is Category.EXECUTE
    # A filter on action types in a read tool does not make it act: the name's verb is stronger.
    audit = {"type": "object", "properties": {"action": {"enum": ["create", "delete"]}}}
    assert classify("list_audit_events", "List audit events.", audit).category is Category.READ


def test_hint_conflicts_say_which_hint_and_why() -> None:
    from generator.catalog.classify import hint_conflict

    result = classify("select_page", "Select a page as the context.", None, READ_ONLY)
    conflict = hint_conflict(result.category, READ_ONLY, result.evidence)
    assert conflict is not None
    assert (conflict.hint, conflict.value, conflict.category, conflict.reviewed) == (
        "readOnlyHint",
        True,
        Category.WRITE,
        False,
    )
    assert "select" in conflict.reason
    assert conflict.summary.startswith(
        "The server marks this tool readOnlyHint: true, but it is rated write:"
    )
    navigate = classify("browser_navigate", "Navigate to a URL", None, DESTRUCTIVE_HINT)
    hinted = hint_conflict(navigate.category, DESTRUCTIVE_HINT, navigate.evidence)
    assert hinted is not None and hinted.hint == "destructiveHint" and "names a deletion" in hinted.reason
    not_read_only = hint_conflict(Category.READ, {"readOnlyHint": False}, classify("get_x").evidence)
    assert not_read_only is not None and not_read_only.value is False
    additive = hint_conflict(Category.DESTRUCTIVE, {"destructiveHint": False}, classify("delete_x").evidence)
    assert additive is not None and additive.hint == "destructiveHint"
    reviewed = hint_conflict(Category.READ, DESTRUCTIVE_HINT, (), "reviewed: searches by title")
    assert reviewed is not None and reviewed.reviewed
    assert reviewed.summary.endswith("but a reviewer rated it read: searches by title.")
    for category, hints in [
        (Category.READ, READ_ONLY),
        (Category.DESTRUCTIVE, DESTRUCTIVE_HINT),
        (Category.EXECUTE, DESTRUCTIVE_HINT),
        (Category.WRITE, {}),
    ]:
        assert hint_conflict(category, hints, ()) is None


def test_a_destructive_hint_does_not_outweigh_a_create_verb() -> None:
    # Trigger.dev marks create_alert destructiveHint: true; it only adds an alert.
    result = classify("create_alert", "Create a monitoring alert for a project.", None, DESTRUCTIVE_HINT)
    assert result.category is Category.WRITE


def test_a_read_only_hint_can_tip_a_tie_but_not_overturn_a_verb() -> None:
    assert classify("delete_widget", "", None, READ_ONLY).category is Category.DESTRUCTIVE


def test_no_signal_at_all_defaults_to_write() -> None:
    result = classify("frobnicate")
    assert result.category is Category.WRITE
    assert [e.signal for e in result.evidence] == ["default"]


def test_evidence_is_strongest_first_and_explains_itself() -> None:
    result = classify(
        "delete_file", "Permanently deletes the file.", {"type": "object", "properties": {"force": {}}}
    )
    weights = [e.weight for e in result.evidence]
    assert weights == sorted(weights, reverse=True)
    assert all(e.detail for e in result.evidence)
    assert result.as_json()["category"] == "destructive"


def test_classification_is_deterministic() -> None:
    args = ("update_widget", "Updates a widget; may replace the existing one.", {"type": "object"}, READ_ONLY)
    assert classify(*args) == classify(*args)


def _tool(**fields: object) -> Tool:
    return classify_tool(
        ToolEntry.model_validate({"name": "delete_widget", "description": "Deletes a widget.", **fields})
    )


def test_the_loader_fills_a_missing_category_from_the_classifier() -> None:
    tool = _tool()
    assert tool.category is Category.DESTRUCTIVE
    assert assess(tool).level is Risk.HIGH
    assert not tool.category_curated
    assert tool.evidence and tool.evidence[0].signal == "name"


def test_a_curated_category_always_wins_and_its_reason_is_the_first_evidence() -> None:
    tool = _tool(category="write", category_reason="only hides the widget; it can be restored")
    assert tool.category is Category.WRITE
    assert tool.category_curated
    assert tool.evidence[0].signal == CURATED_SIGNAL
    assert tool.evidence[0].detail == "only hides the widget; it can be restored"
    assert tool.evidence[0].category is Category.WRITE
    assert _tool(category="write").evidence[0].detail == "set by hand in the registry"


def test_loaded_tools_say_whether_a_person_reviewed_the_category_and_why() -> None:
    reviewed = _tool(category="write", category_reason="only hides the widget; it can be restored")
    assert reviewed.reviewed and reviewed.rating_reason == "only hides the widget; it can be restored"
    automatic = _tool()
    assert not automatic.reviewed
    assert automatic.rating_reason == "the name starts its action with 'delete'"


def test_the_load_step_records_a_hint_conflict_for_classified_and_reviewed_tools() -> None:
    classified = _tool(annotations={"destructiveHint": False})
    assert classified.hint_conflict is not None and not classified.hint_conflict.reviewed
    reviewed = _tool(
        category="read", category_reason="reviewed: only marks it for deletion", annotations=DESTRUCTIVE_HINT
    )
    assert reviewed.hint_conflict is not None and reviewed.hint_conflict.reviewed
    assert reviewed.hint_conflict.reason == "reviewed: only marks it for deletion"
    assert _tool(annotations=DESTRUCTIVE_HINT).hint_conflict is None


def test_a_reason_without_a_category_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        "slug: demo\nname: Demo\nrun: {package_manager: npm, package: demo, version: '1'}\n"
        "provenance: {method: manual, obtained_at: '2026-01-01T00:00:00Z'}\n"
        "tools:\n- name: delete_widget\n  category_reason: because\n",
        encoding="utf-8",
    )
    server, errors = load_server_file(path)
    assert server is None
    assert "category_reason is set but category is not" in errors[0].render()
    assert "(delete_widget)" in errors[0].location


def test_a_hand_set_risk_wins_over_the_risk_rules_and_needs_a_reason() -> None:
    assessment = assess(_tool(risk="medium", risk_reason="soft delete"))
    assert assessment.level is Risk.MEDIUM and assessment.hand_set
    assert assessment.factors[0].detail == "soft delete"
    with pytest.raises(ValueError, match="add risk_reason"):
        _tool(risk="high")


def test_the_labelled_set_meets_the_accuracy_targets() -> None:
    tools = load_labels()
    report = evaluate(tools)
    assert len(tools) >= 300
    assert all(t.reason for t in tools)
    assert report.agreement >= 0.90
    for category in (Category.DESTRUCTIVE, Category.FINANCIAL):
        recall = report.recall(category)
        assert not math.isnan(recall) and recall >= 0.95, category


def test_running_a_query_that_cannot_change_data_is_a_read() -> None:
    logs = classify("execute_log_query", "Executes a log query and waits for the results.")
    assert logs.category is Category.READ
    assert any(e.signal == "read-query" for e in logs.evidence)
    sql = classify("run_query", "Execute SQL queries against the warehouse.")
    assert sql.category is Category.EXECUTE
    assert classify("cancel_log_query", "Cancels a running log query.").category is Category.EXECUTE
