"""intercept.util.fsutil: atomic writes replace whole files, clean up after failure, and keep normal modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from intercept.util.fsutil import atomic_write_bytes, atomic_write_text


def test_new_file_gets_the_umask_mode_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "p.yaml", "a: 1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.yaml").stat().st_mode) == 0o644


def test_replacing_a_file_keeps_its_mode_and_replaces_its_content(tmp_path: Path) -> None:
    target = tmp_path / "p.yaml"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o640)
    atomic_write_text(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]


def test_creates_missing_parent_directories(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a" / "b" / "c.bin", b"\x00\x01")
    assert (tmp_path / "a" / "b" / "c.bin").read_bytes() == b"\x00\x01"


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "p.yaml"
    target.write_text("old\n", encoding="utf-8")
    # A str cannot be written to the binary temporary file, so the write fails after it was created.
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.yaml"]
