"""A smoke build of the shipped registry with the Pagefind index: every tool gets a page and a policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.catalog.load import load_registry
from generator.catalog.policyfile import render_policy_file
from generator.resources import registry_dir
from generator.site import urls as pages
from intercept.policy import load_policy
from tests.unit.generator.site.site_support import build

pytestmark = pytest.mark.e2e


def test_shipped_registry_builds_with_search(tmp_path: Path) -> None:
    registry = load_registry(registry_dir())
    out = tmp_path / "site"
    result = build(registry_dir(), out, search=True, workers=2)
    assert result.tool_pages == registry.tool_count > 0
    assert (out / "pagefind" / "pagefind-ui.js").is_file()
    for server in registry:
        policy_path = out / "policies" / f"{server.slug}.yaml"
        assert policy_path.read_text("utf-8") == render_policy_file(server)
        assert set(load_policy(policy_path).tools) >= {t.name for t in server.tools}
        for tool in server.tools:
            assert (out / pages.output_path(pages.tool_url(server.slug, tool.name))).is_file()
