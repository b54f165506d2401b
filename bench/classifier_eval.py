"""Score the classifier against the hand-labelled tools in tests/data/classifier_labels.yaml.

Usage: .venv/bin/python bench/classifier_eval.py [--labels FILE] [--registry DIR] [--misses]
           [--speed N]

Prints per-category precision and recall, overall agreement, and with --speed the mean time
to classify one tool over N passes of the labelled set.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from generator.catalog.classify import classify, clear_caches  # noqa: E402
from generator.catalog.models import CATEGORY_ORDER, Category  # noqa: E402
from intercept.util.safeyaml import read_yaml_file  # noqa: E402

LABELS = ROOT / "tests" / "data" / "classifier_labels.yaml"
REGISTRY = ROOT / "registry"


@dataclass(frozen=True)
class LabelledTool:
    server: str
    name: str
    label: Category
    reason: str
    description: str
    input_schema: dict[str, Any]
    annotations: dict[str, Any]
    held_out: bool = False


@dataclass
class Report:
    total: int = 0
    agree: int = 0
    confusion: dict[tuple[Category, Category], int] = field(default_factory=dict)
    misses: list[tuple[LabelledTool, Category]] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.agree / self.total if self.total else 0.0

    def precision(self, category: Category) -> float:
        predicted = sum(n for (_, p), n in self.confusion.items() if p == category)
        right = self.confusion.get((category, category), 0)
        return right / predicted if predicted else float("nan")

    def recall(self, category: Category) -> float:
        actual = sum(n for (a, _), n in self.confusion.items() if a == category)
        right = self.confusion.get((category, category), 0)
        return right / actual if actual else float("nan")

    def support(self, category: Category) -> int:
        return sum(n for (a, _), n in self.confusion.items() if a == category)

    def table(self) -> str:
        rows = ["| category | labelled | precision | recall |", "|---|---:|---:|---:|"]
        for category in CATEGORY_ORDER:
            rows.append(
                f"| {category.value} | {self.support(category)} | {self.precision(category):.1%} | "
                f"{self.recall(category):.1%} |"
            )
        rows.append(f"| **overall agreement** | {self.total} | | **{self.agreement:.1%}** |")
        return "\n".join(rows)


def load_labels(labels: Path = LABELS, registry: Path = REGISTRY) -> list[LabelledTool]:
    """Join each label with the tool's scanned description, schema and annotations from the registry."""
    data = read_yaml_file(labels, 4 * 1024 * 1024)
    servers: dict[str, dict[str, Any]] = {}
    out: list[LabelledTool] = []
    for entry in data["labels"]:
        slug = entry["server"]
        if slug not in servers:
            doc = read_yaml_file(registry / f"{slug}.yaml", 8 * 1024 * 1024)
            servers[slug] = {t["name"]: t for t in doc["tools"]}
        tool = servers[slug].get(entry["tool"])
        if tool is None:
            raise KeyError(f"{labels}: {slug}/{entry['tool']} is not in the registry")
        out.append(
            LabelledTool(
                slug,
                entry["tool"],
                Category(entry["category"]),
                entry["reason"],
                tool.get("description") or "",
                tool.get("input_schema") or {},
                tool.get("annotations") or {},
                bool(entry.get("held_out", False)),
            )
        )
    return out


def evaluate(tools: list[LabelledTool]) -> Report:
    report = Report()
    for tool in tools:
        got = classify(tool.name, tool.description, tool.input_schema, tool.annotations).category
        report.total += 1
        report.agree += got == tool.label
        key = (tool.label, got)
        report.confusion[key] = report.confusion.get(key, 0) + 1
        if got != tool.label:
            report.misses.append((tool, got))
    return report


def time_per_tool(tools: list[LabelledTool], passes: int, repeats: int = 5) -> tuple[float, float]:
    """Best and median seconds per tool over `repeats` runs of `passes` passes (best is the least noisy).

    Every run starts with cold caches; with passes=1 nothing is ever served from them.
    """
    runs = []
    for _ in range(repeats):
        clear_caches()
        start = time.perf_counter()
        for _ in range(passes):
            for tool in tools:
                classify(tool.name, tool.description, tool.input_schema, tool.annotations)
        runs.append((time.perf_counter() - start) / (passes * len(tools)))
    runs.sort()
    return runs[0], runs[len(runs) // 2]


def time_synthetic(count: int) -> float:
    """Seconds per tool to classify `count` tools of bench/synth_registry.py, from cold caches."""
    from bench.synth_registry import TOOLS_PER_SERVER, server_doc

    tools: list[dict[str, Any]] = []
    for index in range((count + TOOLS_PER_SERVER - 1) // TOOLS_PER_SERVER):
        tools.extend(server_doc(index, TOOLS_PER_SERVER)["tools"])  # type: ignore[arg-type]
    tools = tools[:count]
    clear_caches()
    start = time.perf_counter()
    for tool in tools:
        classify(tool["name"], tool.get("description", ""), tool.get("input_schema"), tool.get("annotations"))
    return (time.perf_counter() - start) / len(tools)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--registry", type=Path, default=REGISTRY)
    parser.add_argument("--misses", action="store_true", help="List every disagreement.")
    parser.add_argument("--speed", type=int, default=0, help="Also time N passes over the set.")
    parser.add_argument(
        "--synth",
        type=int,
        default=0,
        help="Also time classifying N synthetic tools (bench/synth_registry.py).",
    )
    args = parser.parse_args()
    tools = load_labels(args.labels, args.registry)
    report = evaluate(tools)
    print(f"All {len(tools)} labelled tools from {len({t.server for t in tools})} servers\n")
    print(report.table())
    held_out = [t for t in tools if t.held_out]
    if held_out:
        print(
            f"\nHeld out: {len(held_out)} tools from {len({t.server for t in held_out})} servers, labelled "
            "after the rules were tuned on the others\n"
        )
        print(evaluate(held_out).table())
    if args.misses:
        print("\nDisagreements (label -> classifier):")
        for tool, got in report.misses:
            mark = " [held out]" if tool.held_out else ""
            print(f"  {tool.server}/{tool.name}: {tool.label.value} -> {got.value}  ({tool.reason}){mark}")
    if args.speed:
        print()
        for passes, label in ((1, "cold caches, 1 pass"), (args.speed, f"{args.speed} passes")):
            best, median = time_per_tool(tools, passes)
            print(
                f"classify(), {label}: {best * 1e6:.1f} µs per tool best, {median * 1e6:.1f} µs median "
                f"(5 runs over {len(tools)} tools)"
            )
    if args.synth:
        print(
            f"classify(), {args.synth} synthetic tools, cold caches: "
            f"{time_synthetic(args.synth) * 1e6:.1f} µs per tool"
        )


if __name__ == "__main__":
    main()
