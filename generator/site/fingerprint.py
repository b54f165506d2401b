"""Fingerprints for the build's cache keys: the code and the templates that shape cached data and pages.

Every `.py` file under `generator/` counts, hashed with its path in sorted path order, so a module
added, renamed or changed anywhere in the package invalidates the caches with no list of names to
keep up to date. So does every module of the proxy's policy package: the published policies are
made of its rules.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import intercept.policy

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The `generator` package."""


def tree_digest(root: Path, pattern: str = "*") -> str:
    """A digest of every file under root matching pattern: relative paths and contents, sorted by path."""
    found = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob(pattern) if p.is_file())
    digest = hashlib.blake2b(digest_size=16)
    for rel, path in found:
        data = path.read_bytes()
        digest.update(f"{rel}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def package_fingerprint(root: Path = PACKAGE_DIR) -> str:
    """A digest of every Python module under root (the `generator` package unless told otherwise)."""
    return tree_digest(root, "*.py")


@functools.cache
def code_fingerprint() -> str:
    """Changes whenever any code that turns registry files into cached data or pages changes."""
    policy = Path(intercept.policy.__file__ or "").resolve()
    policy_digest = tree_digest(policy.parent, "*.py") if policy.name == "__init__.py" else ""
    if not policy_digest:
        policy_digest = hashlib.blake2b(policy.read_bytes(), digest_size=16).hexdigest()
    return hashlib.blake2b(f"{package_fingerprint()}\0{policy_digest}".encode(), digest_size=16).hexdigest()
