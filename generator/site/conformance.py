"""The proxy's MCP conformance results: bench/conformance_report.py writes them, the about page shows them."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict

RESULTS = Path(__file__).resolve().parent / "data" / "conformance.json"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tally(_Frozen):
    checks: int
    passed: int
    failed: int


class Scenario(_Frozen):
    name: str
    direct: Tally
    proxied: Tally
    identical: bool


class Totals(_Frozen):
    direct: Tally
    proxied: Tally


class ConformanceReport(_Frozen):
    suite: str
    suite_version: str
    date: str
    node: str
    server: str
    proxy_command: str
    scenarios: list[Scenario]
    totals: Totals


@functools.cache
def load_report(path: Path = RESULTS) -> ConformanceReport | None:
    """The committed results, or None when the file is missing (the about page then says so)."""
    if not path.is_file():
        return None
    return ConformanceReport.model_validate_json(path.read_bytes())
