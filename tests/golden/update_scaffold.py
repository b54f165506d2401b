"""Regenerate tests/golden/scaffold/: `python -m tests.golden.update_scaffold` (or `make golden`).

The golden file is what `intercept scaffold <slug>` prints, captured from the real command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
GOLDEN = ROOT / "scaffold"
SLUGS = ("trigger-dev",)
"""Servers whose scaffold output is pinned; add a slug here and run `make golden`."""


def scaffold_output(slug: str) -> bytes:
    """Standard output of `python -m intercept scaffold <slug>`, run outside the checkout."""
    done = subprocess.run(
        [sys.executable, "-m", "intercept", "scaffold", slug],
        capture_output=True,
        check=True,
        cwd=Path("/"),
        timeout=120,
    )
    return done.stdout


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for slug in SLUGS:
        path = GOLDEN / f"{slug}.yaml"
        path.write_bytes(scaffold_output(slug))
        print(f"updated {path}")


if __name__ == "__main__":
    main()
