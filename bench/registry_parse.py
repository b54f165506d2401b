"""CPU time per tool to parse registry files: YAML only, and load_catalog (parse, validate, cache).

Usage: python bench/registry_parse.py DIR [--files 400] [--rounds 3] [--compare-with REV]

DIR is a registry folder (e.g. written by bench/synth_registry.py). --compare-with REV also times
intercept/util/safeyaml.py as it was at git revision REV, interleaved with the current one.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import generator.catalog.load as registry_module  # noqa: E402
from generator.site.parsecache import load_catalog  # noqa: E402
from intercept.util import safeyaml  # noqa: E402


def _module_at(rev: str, scratch: Path) -> Any:
    source = subprocess.run(
        ["git", "show", f"{rev}:intercept/util/safeyaml.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = scratch / f"safeyaml_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cpu_ms_per_tool(run: Callable[[], int]) -> float:
    start = time.process_time()
    tools = run()
    return (time.process_time() - start) / tools * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("registry", type=Path)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare-with")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        subset = scratch / "registry"
        subset.mkdir()
        for path in sorted(options.registry.glob("*.yaml"))[: options.files]:
            (subset / path.name).write_bytes(path.read_bytes())
        texts = [p.read_text() for p in sorted(subset.glob("*.yaml"))]
        tool_count = load_catalog(subset, scratch / "warmup", 1).tool_count
        modules = {"current": safeyaml}
        if options.compare_with:
            modules[options.compare_with] = _module_at(options.compare_with, scratch)
        for module in modules.values():
            assert [module.load_yaml_text(t) for t in texts] == [safeyaml.load_yaml_text(t) for t in texts]
        results: dict[str, dict[str, list[float]]] = {n: {"yaml": [], "catalog": []} for n in modules}
        for round_number in range(options.rounds):
            for name, module in modules.items():
                registry_module.read_yaml_file = module.read_yaml_file  # type: ignore[attr-defined]

                def parse_only(module: Any = module) -> int:
                    for text in texts:
                        module.load_yaml_text(text)
                    return tool_count

                def catalog(round_number: int = round_number, name: str = name) -> int:
                    cache = scratch / f"cache-{name}-{round_number}"
                    return load_catalog(subset, cache, 1).tool_count

                results[name]["yaml"].append(_cpu_ms_per_tool(parse_only))
                results[name]["catalog"].append(_cpu_ms_per_tool(catalog))
        print(f"{len(texts)} files, {tool_count:,} tools; CPU ms per tool, each round")
        for name, steps in results.items():
            for step, values in steps.items():
                print(f"{name:>10} {step:>8}: " + " ".join(f"{v:.3f}" for v in values))


if __name__ == "__main__":
    main()
