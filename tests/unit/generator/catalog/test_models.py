"""The registry models validate what a file holds and nothing more: they never classify."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generator.catalog import models
from generator.catalog.models import Category, ServerEntry, Tool, ToolEntry
from tests.unit.generator.catalog.test_load import server_data


def test_validating_a_file_leaves_an_uncurated_category_empty() -> None:
    tools = [
        {"name": "delete_job", "description": "Deletes a job."},
        {"name": "list_jobs", "category": "read"},
    ]
    entry = ServerEntry.model_validate(server_data(tools=tools))
    assert entry.tools[0].category is None and entry.tools[0].evidence == []
    assert entry.tools[1].category is Category.READ and entry.tools[1].evidence == []


def test_a_loaded_tool_must_have_a_category() -> None:
    with pytest.raises(ValueError, match="category"):
        Tool.model_validate({"name": "delete_job", "description": "Deletes a job."})


def test_the_models_load_without_the_classifier() -> None:
    probe = "import sys, generator.catalog.models; print('generator.catalog.classify' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"


@pytest.mark.parametrize("model", ["ServerEntry", "RunSpec", "Provenance", "ToolEntry", "Evidence"])
def test_every_registry_field_is_documented(model: str) -> None:
    docs = (Path(__file__).resolve().parents[4] / "docs" / "REGISTRY.md").read_text(encoding="utf-8")
    fields = getattr(models, model).model_fields
    missing = [name for name in fields if f"| `{name}` |" not in docs]
    assert missing == [], f"{model} fields missing from docs/REGISTRY.md: {missing}"


@pytest.mark.parametrize(
    ("description", "line"),
    [
        ("⚠️ **MANDATORY: The handler will REJECT any call without outputDir.", ""),
        ("[IMPORTANT] If you need many items, use create_items instead.", ""),
        ("Only call this tool if you can execute an HTTP PUT.", ""),
        ("When to use: any cross-board linking task.", ""),
        ("The ID must be a UUID and is required.", "The ID must be a UUID and is required."),
        ("Use this tool to search the docs.", "Use this tool to search the docs."),
        ("Lists runs. You MUST pass a project.", "Lists runs."),
    ],
)
def test_a_first_sentence_that_instructs_the_agent_is_not_used_as_a_summary(
    description: str, line: str
) -> None:
    from generator.catalog.models import describing_sentence

    assert describing_sentence(description) == line
    tool = ToolEntry.model_validate({"name": "t", "title": "A title", "description": description})
    assert Tool.model_construct(**{**tool.__dict__, "category": Category.READ}).one_line == (
        line or "A title"
    )
