"""Scan statistics from the JSON lines `intercept registry add --log FILE` writes.

    python bench/intake/stats.py bench/intake/run.jsonl

A package attempted more than once counts by its last attempt; its time is that attempt's
(install + every sandboxed start it took). Packages skipped as already in the registry are counted
apart and have no time."""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from pathlib import Path


def main(argv: list[str]) -> int:
    last: dict[str, dict[str, object]] = {}
    for line in Path(argv[0]).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            last[str(row["package"])] = row
    skipped = [r for r in last.values() if r.get("skipped")]
    attempted = [r for r in last.values() if not r.get("skipped")]
    scanned = [r for r in attempted if r.get("reason") is None]
    reasons = Counter(str(r["reason"]) for r in attempted if r.get("reason") is not None)
    print(f"already in the registry (skipped): {len(skipped)}")
    print(f"attempted: {len(attempted)}  scanned: {len(scanned)}  failed: {sum(reasons.values())}")
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<18} {count}")
    for label, rows in (("scanned", scanned), ("failed", [r for r in attempted if r.get("reason")])):
        times = sorted(float(str(r["seconds"])) for r in rows)
        if times:
            p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
            print(
                f"seconds per {label} package: median {statistics.median(times):.0f}, "
                f"mean {statistics.fmean(times):.0f}, p90 {p90:.0f}, max {times[-1]:.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
