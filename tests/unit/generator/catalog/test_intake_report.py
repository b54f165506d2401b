"""docs/SCAN.md's intake section is what the registry, its failures file and the candidate list say."""

from __future__ import annotations

import json
from pathlib import Path

from generator.catalog.intake_report import BEGIN, END, render

ROOT = Path(__file__).resolve().parents[4]


def test_scan_doc_intake_section_is_current() -> None:
    text = (ROOT / "docs" / "SCAN.md").read_text(encoding="utf-8")
    section = text[text.index(BEGIN) : text.index(END) + len(END)]
    expected = render(ROOT / "registry", ROOT / "bench" / "intake" / "candidates.tsv")
    assert section == expected, "run: python -m generator.catalog.intake_report"


def test_counts_come_from_the_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "slug: a\nrun: {package_manager: npm, package: '@x/a', version: '1'}\ntools: [{name: t}]\n"
    )
    failure = {"ecosystem": "pypi", "package": "B_mcp", "version": None, "date": "2026-01-01"}
    (tmp_path / "_failures.json").write_text(
        json.dumps({"failures": [failure | {"reason": "timed-out", "error": ["x"]}]})
    )
    candidates = tmp_path / "c.tsv"
    candidates.write_text(
        "ecosystem\tpackage\tdownloads_a_month_or_pypi_rank\tsummary\n"
        "npm\t@x/a\t500\t\nnpm\tc\t10\t\npypi\tb-mcp\t7\t\n"
    )
    out = render(tmp_path, candidates)
    assert "Registry: **1 servers**" in out
    assert "| `timed-out` | 1 |" in out and "| `crashed` | 0 |" in out
    assert "| 1 | `@x/a` | 500 | in the registry: `a` (1 tools) |" in out
    assert "| 2 | `c` | 10 | not attempted yet |" in out
    assert "| 1 | `b-mcp` | 7 | failed: `timed-out` |" in out
