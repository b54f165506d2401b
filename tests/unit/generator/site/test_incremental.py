"""Incremental builds: after every kind of registry edit, the site equals a full build of the new registry."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from generator.site import urls as pages
from tests.unit.generator.site.site_support import build, tree_hashes

SYNTH = Path(__file__).parents[4] / "bench" / "synth_registry.py"


def _synth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("synth_registry", SYNTH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _edit(registry: Path, slug: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = registry / f"{slug}.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))


def _set_tool(index: int, **fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["tools"][index].update(fields)

    return change


def _set(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.update(fields)


def test_every_kind_of_edit_gives_the_site_a_full_build_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth = _synth()
    monkeypatch.setattr(pages, "PAGE_SIZE", 15)
    monkeypatch.setattr(pages, "SERVERS_PAGE_SIZE", 3)
    registry = tmp_path / "registry"
    synth.write_registry(200, registry)
    out = tmp_path / "site"
    assert build(registry, out).mode == "full"
    # A hint the server index filters on that changes neither category nor risk.
    hints = {"readOnlyHint": True, "idempotentHint": True}
    provenance = {"method": "manual", "obtained_at": "2026-11-20T00:00:00Z", "notes": "re-scanned"}
    edits: list[tuple[str, Callable[[], object]]] = [
        ("server description", lambda: _edit(registry, "synth-00003", _set(description="Edited. Twice."))),
        (
            "tool summary",
            lambda: _edit(registry, "synth-00005", _set_tool(0, description="A new first sentence. More.")),
        ),
        ("server name", lambda: _edit(registry, "synth-00001", _set(name="Renamed Service"))),
        ("tool renamed", lambda: _edit(registry, "synth-00002", _set_tool(1, name="zz_unique_tool"))),
        ("tool category", lambda: _edit(registry, "synth-00004", _set_tool(2, category="destructive"))),
        ("scan date", lambda: _edit(registry, "synth-00006", _set(provenance=provenance))),
        (
            "tool annotation",
            lambda: _edit(registry, "synth-00007", _set_tool(0, annotations=hints)),
        ),
        (
            "server added",
            lambda: (registry / "synth-00050.yaml").write_text(
                yaml.safe_dump(synth.server_doc(50, 25), sort_keys=False, width=100)
            ),
        ),
        ("server removed", lambda: (registry / "synth-00000.yaml").unlink()),
        ("nothing", lambda: None),
    ]
    for number, (what, edit) in enumerate(edits):
        edit()
        result = build(registry, out)
        assert result.mode == "incremental", what
        fresh = tmp_path / f"fresh-{number}" / "site"
        build(registry, fresh)
        assert tree_hashes(out) == tree_hashes(fresh), what
        if what == "server description":
            assert result.rendered_units == 1
        if what == "nothing":
            assert result.rendered_units == 0 and result.written == 0


def test_a_display_change_renders_only_the_pages_that_show_the_server(tmp_path: Path) -> None:
    synth = _synth()
    registry = tmp_path / "registry"
    synth.write_registry(200, registry)
    out = tmp_path / "site"
    build(registry, out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    _edit(registry, "synth-00005", _set_tool(0, description="A new first sentence. More."))
    result = build(registry, out)
    assert result.mode == "incremental"
    touched = {p for p, mtime in mtimes.items() if p.stat().st_mtime_ns != mtime}
    assert touched and len(touched) == result.written
    assert len(touched) < len(mtimes) // 4
    name = yaml.safe_load((registry / "synth-00005.yaml").read_text())["tools"][0]["name"]
    for page in touched:
        if page.suffix != ".html":
            assert page.name in {"registry.json", "synth-00005.yaml"}
            continue
        text = page.read_text()
        assert "synth-00005" in text and (name in text or "server" in page.parts)
