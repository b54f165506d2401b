"""Regenerate every golden file: `python -m tests.update_golden` (what `make golden` runs).

Each `tests/golden/update_<name>.py` module with a `main()` is one golden set; adding a module is
enough to have it regenerated here. Review the diff before committing.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def updaters() -> list[str]:
    return sorted(f"tests.golden.{p.stem}" for p in GOLDEN_DIR.glob("update_*.py"))


def main(argv: list[str]) -> int:
    """Run every updater, or only those whose name contains one of argv's words."""
    chosen = [m for m in updaters() if not argv or any(word in m for word in argv)]
    if not chosen:
        print(f"no golden updater matches {argv}; have: {', '.join(updaters())}", file=sys.stderr)
        return 2
    for name in chosen:
        print(f"== {name}")
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
