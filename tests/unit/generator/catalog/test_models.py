"""The registry models validate what a file holds and nothing more: they never classify."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from generator.catalog import models
from generator.catalog.models import Category, ServerEntry, Tool
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
