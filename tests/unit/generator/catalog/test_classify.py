"""The classifier's signals one at a time, how they combine, and its agreement with hand labels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.classifier_eval import evaluate, load_labels
from generator.catalog.classify import classify, name_tokens, verb_category
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


def test_annotations_never_decide_alone() -> None:
    hinted_read = classify("frobnicate", "", None, READ_ONLY)
    hinted_destructive = classify("frobnicate", "", None, DESTRUCTIVE_HINT)
    for result in (hinted_read, hinted_destructive):
        assert result.category is Category.WRITE
        assert any(e.signal == "default" for e in result.evidence)
        assert any(e.signal == "annotation" for e in result.evidence)


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
