"""Regenerate tests/golden/site/ from tests/data/registry_small: `python -m tests.golden.update_site`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from generator.resources import templates_dir
from generator.site.build import BuildOptions, build_site

ROOT = Path(__file__).resolve().parent
GOLDEN = ROOT / "site"
REGISTRY = ROOT.parent / "data" / "registry_small"
BASE_URL = "https://example.com"


def build_golden(out: Path) -> None:
    with tempfile.TemporaryDirectory() as cache:
        build_site(
            BuildOptions(
                registry=REGISTRY,
                out=out,
                base_url=BASE_URL,
                search=False,
                workers=1,
                cache_dir=Path(cache),
                templates=templates_dir(),
                incremental=False,
            )
        )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "site"
        build_golden(out)
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(out, GOLDEN)
    print(f"updated {GOLDEN}")


if __name__ == "__main__":
    main()
