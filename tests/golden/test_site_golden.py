"""The site built from tests/data/registry_small, compared byte for byte with tests/golden/site/.

After an intended change, regenerate with `python -m tests.golden.update_site` (or `make golden`)
and review the diff.
"""

from __future__ import annotations

from pathlib import Path

from tests.golden.update_site import GOLDEN, build_golden


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_site_matches_the_golden_tree(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_golden(out)
    built, golden = _tree(out), _tree(GOLDEN)
    assert sorted(built) == sorted(golden), "files differ; run python -m tests.golden.update_site and review"
    changed = [name for name in built if built[name] != golden[name]]
    assert changed == [], (
        f"{len(changed)} files differ, e.g. {changed[:5]}; run python -m tests.golden.update_site"
    )
