"""`intercept scaffold` output compared byte for byte with tests/golden/scaffold/.

After an intended change, regenerate with `make golden` (python -m tests.update_golden) and review
the diff.
"""

from __future__ import annotations

import pytest

from generator.catalog.load import load_registry
from generator.catalog.policyfile import render_policy_file
from generator.resources import registry_dir
from intercept.policy import load_policy_text
from tests.golden.update_scaffold import GOLDEN, SLUGS, scaffold_output


@pytest.mark.parametrize("slug", SLUGS)
def test_scaffold_function_matches_golden(slug: str) -> None:
    server = load_registry(registry_dir()).by_slug(slug)
    assert server is not None
    golden = (GOLDEN / f"{slug}.yaml").read_bytes()
    assert render_policy_file(server).encode("utf-8") == golden, "run `make golden` and review the diff"
    assert load_policy_text(golden.decode("utf-8")).summary().tools == len(server.tools)


@pytest.mark.parametrize("slug", SLUGS)
def test_scaffold_command_matches_golden(slug: str) -> None:
    assert scaffold_output(slug) == (GOLDEN / f"{slug}.yaml").read_bytes(), "run `make golden` and review"
