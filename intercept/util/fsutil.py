"""File writes that never leave a half-written file behind, and files only this user can change.

The proxy trusts its state (the SQLite counters and their `-wal`/`-shm`/`-journal` files), the
audit log and the audit log's HMAC key. `private_dir`, `check_private` and `open_private` refuse
(UnsafeFile, naming the file and the fix) any such file another local user could have planted
or could change: one not owned by the running user, or writable by group or others. A directory
may also belong to root, and be world-writable if it is sticky (like /tmp), since then no one
else can replace what the proxy creates in it. What the proxy creates is 0600, directories 0700.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


class UnsafeFile(PermissionError):
    """A file or directory the proxy would trust that another user could have written or could change."""


def _me() -> int:
    return os.geteuid()


def check_private(path: Path, info: os.stat_result, what: str, *, secret: bool = False) -> None:
    """UnsafeFile unless `info` (of `path`) is owned by this user and writable by no one else;
    with `secret`, readable by no one else either."""
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != _me():
        raise UnsafeFile(
            f"{what} {path} belongs to another user (uid {info.st_uid}), so it cannot be trusted "
            f"(fix: remove it and the proxy creates its own, or if it is yours, chown {_me()} {path})"
        )
    if mode & 0o022:
        raise UnsafeFile(
            f"{what} {path} is writable by group or others (mode {mode:04o}), so it cannot be trusted "
            f"(fix: chmod 600 {path})"
        )
    if secret and mode & 0o044:
        raise UnsafeFile(
            f"{what} {path} is readable by group or others (mode {mode:04o}), so it may have leaked "
            f"(fix: remove it and the proxy creates a new one, or chmod 600 {path} if no one else can "
            "have read it)"
        )


def check_private_path(path: Path, what: str, *, secret: bool = False) -> bool:
    """`check_private` for the file at `path`, if there is one; whether there is."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    check_private(path, info, what, secret=secret)
    return True


def private_dir(path: Path, what: str) -> None:
    """Create `path` and its missing parents 0700; UnsafeFile if it exists and another user could
    change what is in it (owned by neither this user nor root, or writable by others and not sticky)."""
    missing: list[Path] = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another proxy made it meanwhile; checked below
            directory.mkdir(mode=0o700)
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in (_me(), 0):
        raise UnsafeFile(
            f"{what} {path} belongs to another user (uid {info.st_uid}), who could replace the files "
            "in it (fix: use a directory of your own)"
        )
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise UnsafeFile(
            f"{what} {path} is writable by group or others (mode {mode:04o}), so they could replace "
            f"the files in it (fix: chmod go-w {path}, or use a directory of your own)"
        )


def open_private(path: Path, flags: int, what: str, *, secret: bool = False) -> int:
    """`os.open(path, flags, 0o600)`, checked with `check_private` on the opened file itself (no race
    with a rename); UnsafeFile (the descriptor closed) if it fails."""
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    try:
        check_private(path, os.fstat(fd), what, secret=secret)
    except BaseException:
        os.close(fd)
        raise
    return fd


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path via a temporary file in the same directory and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _target_mode(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (or the old file's).
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _target_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
