"""The cache keys' code fingerprint covers every module of the package, found by walking it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator.site import fingerprint
from generator.site.fingerprint import PACKAGE_DIR, code_fingerprint, package_fingerprint, tree_digest


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "generator"
    shutil.copytree(PACKAGE_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "_data"))
    return root


def test_a_copy_of_the_package_has_the_same_fingerprint(tmp_path: Path) -> None:
    assert package_fingerprint(_copy(tmp_path)) == package_fingerprint()


def test_adding_a_module_anywhere_changes_the_fingerprint(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    before = package_fingerprint(root)
    (root / "site" / "views" / "newpage.py").write_text('"""A page kind nobody listed."""\n')
    assert package_fingerprint(root) != before


def test_changing_any_module_changes_the_fingerprint(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    before = package_fingerprint(root)
    modules = sorted(root.rglob("*.py"))
    assert len(modules) > 20
    for module in modules:
        original = module.read_bytes()
        module.write_bytes(original + b"\n")
        assert package_fingerprint(root) != before, module
        module.write_bytes(original)
    assert package_fingerprint(root) == before


def test_moving_code_between_modules_changes_the_fingerprint(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "a.py").write_text("x = 1\n")
    (root / "b.py").write_text("")
    before = package_fingerprint(root)
    (root / "a.py").write_text("")
    (root / "b.py").write_text("x = 1\n")
    assert package_fingerprint(root) != before


def test_files_other_than_modules_do_not_count(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    before = package_fingerprint(root)
    (root / "notes.txt").write_text("not code")
    assert package_fingerprint(root) == before
    assert tree_digest(root) != tree_digest(root, "*.py")


def test_the_code_fingerprint_follows_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    code_fingerprint.cache_clear()
    before = code_fingerprint()
    code_fingerprint.cache_clear()
    monkeypatch.setattr(fingerprint, "package_fingerprint", lambda root=PACKAGE_DIR: "another package")
    try:
        assert code_fingerprint() != before
    finally:
        code_fingerprint.cache_clear()
