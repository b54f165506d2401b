"""Writing the site: content-hashed writes that skip unchanged files, the build manifest, and the swap.

A full build renders into a fresh temporary directory beside the output and swaps it in with two
renames, so a failed build leaves the previous site untouched. An incremental build runs only
after the whole registry validated; it rewrites changed files in place (each atomically) and
leaves a 'writing' marker until the new manifest is saved, so an interrupted build is followed
by a full one.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.marshal"
"""marshal, not JSON: a 250,000-page manifest loads and saves in a fraction of the time."""
WRITING_MARKER = "manifest.writing"
MANIFEST_FORMAT = 3


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class Writer:
    """Writes files under root; with `previous` hashes, leaves byte-identical files alone."""

    root: Path
    previous: dict[str, str] | None = None
    written: int = 0
    files: dict[str, str] = field(default_factory=dict)
    size: int = 0
    _dirs: set[Path] = field(default_factory=set)

    def write(self, rel: str, data: bytes) -> None:
        digest = content_hash(data)
        self.files[rel] = digest
        self.size += len(data)
        target = self.root / rel
        if self.previous is not None and self.previous.get(rel) == digest and target.is_file():
            return
        parent = target.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)
        if self.previous is None:
            target.write_bytes(data)
        else:
            tmp = parent / f".{target.name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        self.written += 1

    def write_text(self, rel: str, text: str) -> None:
        self.write(rel, text.encode("utf-8"))


@dataclass
class Manifest:
    out: str
    settings: str
    state: str
    files: dict[str, str]
    """Site-relative path to content hash."""
    units: dict[str, list[Any]]
    """Server slug to [unit key, [files]]."""
    pages: dict[str, str] = field(default_factory=dict)
    """Browse page path to the key of the items it lists."""
    record: dict[str, Any] = field(default_factory=dict)
    """The build's dependency record (`generator.site.record.DependencyRecord.dump`)."""

    def dump(self) -> bytes:
        return marshal.dumps(
            {
                "format": MANIFEST_FORMAT,
                "out": self.out,
                "settings": self.settings,
                "state": self.state,
                "files": self.files,
                "units": self.units,
                "pages": self.pages,
                "record": self.record,
                "python": list(sys.version_info[:2]),
            }
        )


def read_manifest(cache_dir: Path, out: Path, settings: str) -> Manifest | None:
    """The previous build's manifest if an incremental build on top of it is safe, else None."""
    if (cache_dir / WRITING_MARKER).exists():
        return None
    try:
        data = marshal.loads((cache_dir / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != MANIFEST_FORMAT
        or data.get("python") != list(sys.version_info[:2])
    ):
        return None
    if (
        data.get("out") != str(out.resolve())
        or data.get("settings") != settings
        or data.get("state") != "complete"
    ):
        return None
    manifest = Manifest(
        data["out"],
        data["settings"],
        data["state"],
        data["files"],
        data["units"],
        data.get("pages", {}),
        data.get("record", {}),
    )
    index = out / "index.html"
    try:
        if content_hash(index.read_bytes()) != manifest.files.get("index.html"):
            return None
    except OSError:
        return None
    return manifest


def write_manifest(cache_dir: Path, manifest: Manifest) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f"{MANIFEST_NAME}.{os.getpid()}.tmp"
    tmp.write_bytes(manifest.dump())
    os.replace(tmp, cache_dir / MANIFEST_NAME)
    (cache_dir / WRITING_MARKER).unlink(missing_ok=True)


def mark_writing(cache_dir: Path) -> None:
    """Record that the site is being changed in place; until write_manifest, no build trusts it."""
    (cache_dir / WRITING_MARKER).touch()


def sweep_abandoned(out: Path) -> int:
    """Discard staging and old-site folders beside `out` whose build process no longer exists.

    A build stopped by SIGKILL (or a power cut) cannot clean up after itself; the next build
    does. Folders of a running build (its process id is alive) are left alone.
    """
    prefixes = (f".{out.name}.building-", f".{out.name}.old-")
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return 0
    discarded = 0
    for entry in entries:
        prefix = next((p for p in prefixes if entry.name.startswith(p)), None)
        if prefix is None:
            continue
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and not _process_exists(int(pid)) and entry.is_dir():
            discard_tree(entry)
            discarded += 1
    return discarded


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


_STAGING: set[Path] = set()


def staging_dir(out: Path) -> Path:
    path = out.parent / f".{out.name}.building-{os.getpid()}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    _STAGING.add(path)
    return path


def discard_staging(path: Path) -> None:
    """Remove a staging folder whose build failed."""
    _STAGING.discard(path)
    shutil.rmtree(path, ignore_errors=True)


def discard_all_staging() -> None:
    """Remove every staging folder this process has open (a build stopped by a signal)."""
    for path in list(_STAGING):
        discard_staging(path)


def swap_in(staged: Path, out: Path) -> None:
    """Replace out with staged using renames; the old site stays whole until the last moment."""
    old = out.parent / f".{out.name}.old-{os.getpid()}-{time.monotonic_ns()}"
    if out.exists():
        os.replace(out, old)
    os.replace(staged, out)
    _STAGING.discard(staged)
    if old.exists():
        discard_tree(old)


_DISCARDING: list[int] = []


def discard_tree(path: Path) -> None:
    """Delete a folder that is already out of the way, in a detached process.

    Every page is its own folder, and on some disks removing 250,000 folders takes minutes; the new
    site is already in place, so the build does not wait for it.
    """
    for pid in list(_DISCARDING):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                _DISCARDING.remove(pid)
        except ChildProcessError:
            _DISCARDING.remove(pid)
    code = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
    devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        _DISCARDING.append(
            os.posix_spawn(
                sys.executable,
                [sys.executable, "-c", code, str(path)],
                os.environ,
                file_actions=devnull,
                setsid=True,
            )
        )
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def delete_stale(root: Path, stale: list[str]) -> int:
    """Remove files a previous build wrote that this build no longer produces, and emptied folders."""
    removed = 0
    parents: set[Path] = set()
    for rel in stale:
        path = root / rel
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        parents.add(path.parent)
    for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        current = parent
        while current != root and current.is_dir() and not any(current.iterdir()):
            current.rmdir()
            current = current.parent
    return removed
