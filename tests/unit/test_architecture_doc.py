"""docs/ARCHITECTURE.md names every module of `intercept/` and `generator/`, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def _modules() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for package in ("intercept", "generator")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "__init__.py" or path.parent.name not in {"intercept", "generator"}
    }


def test_every_module_is_on_the_map() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(module for module in _modules() if f"`{module}`" not in text)
    assert missing == [], "add these modules, with their one-line job, to docs/ARCHITECTURE.md"


def test_the_map_names_no_module_that_is_gone() -> None:
    named = set(re.findall(r"`((?:intercept|generator)/[\w/]+\.py)`", DOC.read_text(encoding="utf-8")))
    assert named, "the map names no module at all"
    assert sorted(named - _modules()) == []


def test_no_module_is_over_600_lines() -> None:
    long = sorted(
        f"{module} ({lines} lines)"
        for module in _modules()
        if (lines := len((ROOT / module).read_text(encoding="utf-8").splitlines())) > 600
    )
    assert long == []
