"""intercept.util.fsutil: atomic writes replace whole files, clean up after failure, and keep normal modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from intercept.util.fsutil import (
    UnsafeFile,
    atomic_write_bytes,
    atomic_write_text,
    check_private_path,
    open_private,
    private_dir,
)


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


NOBODY = 65534


def planted(path: Path) -> Path:
    """`path` handed to another user (nobody), as if they had created it; needs root (as in CI)."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(path, NOBODY, NOBODY)
    return path


def test_private_dir_creates_every_missing_directory_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        private_dir(tmp_path / "a" / "b" / "c", "state directory")
    finally:
        os.umask(old)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_private_dir_refuses_a_directory_another_user_controls(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    planted(theirs)
    with pytest.raises(UnsafeFile, match=r"state directory .*theirs belongs to another user \(uid 65534\)"):
        private_dir(theirs, "state directory")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(UnsafeFile, match=r"writable by group or others \(mode 0777\).*chmod go-w"):
        private_dir(shared, "state directory")
    shared.chmod(0o1777)  # sticky, like /tmp: no one else can replace what is created in it
    private_dir(shared, "state directory")


@pytest.mark.parametrize(
    ("mode", "secret", "problem"),
    [(0o664, False, "writable by group or others"), (0o602, False, "writable"), (0o640, True, "readable")],
)
def test_check_private_refuses_files_others_can_change_or_read(
    tmp_path: Path, mode: int, secret: bool, problem: str
) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    target.chmod(mode)
    with pytest.raises(UnsafeFile, match=problem) as refused:
        check_private_path(target, "key file", secret=secret)
    assert str(target) in str(refused.value) and "chmod 600" in str(refused.value)
    target.chmod(0o600)
    assert check_private_path(target, "key file", secret=secret)
    assert not check_private_path(tmp_path / "missing", "key file")


def test_open_private_creates_0600_and_refuses_a_planted_file(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        fd = open_private(tmp_path / "new", os.O_WRONLY | os.O_CREAT, "log")
    finally:
        os.umask(old)
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o600
    planted(tmp_path / "new")
    with pytest.raises(UnsafeFile, match="belongs to another user") as refused:
        open_private(tmp_path / "new", os.O_WRONLY | os.O_APPEND, "log")
    assert "remove it" in str(refused.value) and f"chown {os.geteuid()}" in str(refused.value)
