"""Full-text search: run Pagefind (the `pagefind[bin]` PyPI package) over the built site."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


class SearchIndexError(RuntimeError):
    """Pagefind failed; the message carries its output."""


def run_pagefind(site: Path, in_place: bool = True) -> None:
    """Index site into site/pagefind. Not in place: index elsewhere, then swap the folder in whole."""
    target = site / "pagefind"
    output = target if in_place else site.parent / f".{site.name}.pagefind-{os.getpid()}"
    if output.exists():
        shutil.rmtree(output)
    command = [
        sys.executable,
        "-m",
        "pagefind",
        "--site",
        str(site),
        "--output-path",
        str(output),
        "--silent",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(output, ignore_errors=True)
        raise SearchIndexError(
            f"pagefind failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
        )
    if not in_place:
        old = site.parent / f".{site.name}.pagefind-old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(output, target)
        shutil.rmtree(old, ignore_errors=True)
