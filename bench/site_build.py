"""Time `intercept build` on synthetic registries and record peak memory (RSS of the whole process tree).

Peak memory is reported as the tree's summed RSS and, in brackets, its summed PSS (each shared
page divided among the processes sharing it): forked render workers share much of the parent's
memory, which RSS counts once per process.

Usage: python bench/site_build.py [--sizes 10000 100000 250000] [--search-sizes 10000] [--work DIR]
                                  [--search-only] [--search-shard-pages N] [--tools-per-server 25]
       python bench/site_build.py --sizes 100000 --compare-with REV [--rounds 2]
       python bench/site_build.py --real-registry [--rounds 2]

For each size N: write a synthetic registry (bench/synth_registry.py), then time
  cold:        no parse cache, no previous site, --no-search;
  warm:        parse cache present, --full (every page rendered again), --no-search;
  incremental: one server file changed, previous site present, --no-search;
and, for the sizes in --search-sizes, a full build with the Pagefind index followed by an
incremental one (one server file changed, search bundles re-indexed where pages changed).
--search-only runs just those two, reusing the parse cache a previous run left in --work.

--real-registry times cold full builds of the shipped registry (registry/) instead: no parse cache,
no previous site, once with the Pagefind index (what `intercept build` does by default) and once
with --no-search, --rounds times each.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from synth_registry import TOOLS_PER_SERVER, write_registry  # noqa: E402


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_kb(pid: int) -> tuple[int, int]:
    """Summed RSS and PSS (KiB) of `pid` and its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as handle:
                pages = int(handle.read().split()[1])
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total, pss, stack = 0, 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        pss += _pss_kb(current) if current in rss else 0
        stack.extend(children.get(current, []))
    return total, pss


def run(args: list[str], code: Path | None = None) -> tuple[float, float, str, str]:
    """Wall seconds, CPU seconds (whole tree), peak tree memory ("RSS MB (PSS MB)"), and the
    summary line of one build.

    code: a source tree to run instead of this checkout (see --compare-with).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(code)} if code is not None else None
    process = subprocess.Popen(
        [sys.executable, "-m", "intercept", "build", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=code,
    )
    peak, peak_pss = 0, 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak, peak_pss
        while not done.is_set():
            rss, pss = _tree_rss_kb(process.pid)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    out, err = process.communicate()
    done.set()
    poller.join()
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode != 0:
        raise SystemExit(f"build failed: {err}")
    return elapsed, cpu, f"{peak // 1024:,} MB (PSS {peak_pss // 1024:,})", out.strip().splitlines()[-1]


def synthetic(size: int, work: Path, per_server: int) -> Path:
    """The synthetic registry of `size` tools, `per_server` a server, written on first use."""
    registry = work / (
        f"registry-{size}" if per_server == TOOLS_PER_SERVER else f"registry-{size}-{per_server}"
    )
    if not registry.is_dir():
        write_registry(size, registry, per_server)
    return registry


def bench(
    size: int,
    work: Path,
    search: bool,
    warm: bool = True,
    search_only: bool = False,
    shard_pages: int = 0,
    per_server: int = TOOLS_PER_SERVER,
) -> None:
    registry = synthetic(size, work, per_server)
    out, cache = work / f"site-{registry.name}", work / f".cache-{registry.name}"
    cached = cache.is_dir()
    if not search_only:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    common = ["--registry", str(registry), "--out", str(out), "--cache-dir", str(cache), "--workers", "2"]
    search_args = ["--search-shard-pages", str(shard_pages)] if shard_pages else []

    servers = len(list(registry.glob("*.yaml")))

    def emit(name: str, result: tuple[float, float, int, str]) -> None:
        secs, cpu, mb, summary = result
        print(
            f"| {size:,} ({servers:,} servers) | {name} | {secs:.1f} s | {cpu:.1f} s | {size / secs:,.0f} | "
            f"{2 * size / cpu:,.0f} | "
            f"{mb} | {os.getloadavg()[0]:.1f} | {summary} |",
            flush=True,
        )

    def incremental(name: str, extra: list[str]) -> None:
        changed = sorted(registry.glob("*.yaml"))[len(list(registry.glob("*.yaml"))) // 2]
        original = changed.read_text()
        changed.write_text(original.replace("for benchmarks.", "for benchmarks (edited)."))
        try:
            emit(name, run([*common, *extra]))
        finally:
            changed.write_text(original)

    if search_only:
        name = "warm parse cache, all pages + Pagefind" if cached else "cold + Pagefind"
        emit(name, run([*common, "--full", *search_args]))
        incremental("incremental + Pagefind, one server changed", search_args)
        return
    emit("cold (parse + render)", run([*common, "--no-search"]))
    if warm:
        emit("warm parse cache, all pages", run([*common, "--no-search", "--full"]))
    incremental("incremental, one server changed", ["--no-search"])
    if search:
        emit("warm parse cache, all pages + Pagefind", run([*common, "--full", *search_args]))
        incremental("incremental + Pagefind, one server changed", search_args)


def real_registry(work: Path, rounds: int) -> None:
    """Cold full builds of the shipped registry, with and without the search index."""
    registry = ROOT / "registry"
    servers = sorted(registry.glob("*.yaml"))
    out, cache = work / "site-real", work / ".cache-real"
    for number in range(1, rounds + 1):
        for search in (True, False):
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
            args = [
                "--registry",
                str(registry),
                "--out",
                str(out),
                "--cache-dir",
                str(cache),
                "--workers",
                "2",
            ]
            secs, cpu, mb, summary = run([*args] if search else [*args, "--no-search"])
            kind = "cold + Pagefind" if search else "cold, --no-search"
            load = os.getloadavg()[0]
            print(
                f"| real registry ({len(servers)} servers) | {kind}, round {number} | {secs:.1f} s | "
                f"{cpu:.1f} s | | | {mb} | {load:.1f} | {summary} |",
                flush=True,
            )


def compare(size: int, work: Path, rev: str, rounds: int) -> None:
    """Cold builds of this checkout and of git revision rev, interleaved, in the same conditions."""
    registry = synthetic(size, work, TOOLS_PER_SERVER)
    old = work / f"code-{rev}"
    if not old.is_dir():
        old.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    for number in range(1, rounds + 1):
        for name, code in (("current", None), (rev, old)):
            out, cache = work / f"site-{size}", work / f".cache-{size}"
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
            args = ["--registry", str(registry), "--out", str(out), "--cache-dir", str(cache)]
            secs, cpu, mb, summary = run([*args, "--workers", "2", "--no-search"], code)
            load = os.getloadavg()[0]
            print(
                f"| {size:,} | cold, {name}, round {number} | {secs:.1f} s | {cpu:.1f} s | "
                f"{size / secs:,.0f} | {2 * size / cpu:,.0f} | {mb} | {load:.1f} | {summary} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 250_000])
    parser.add_argument("--search-sizes", type=int, nargs="*", default=[10_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/intercept-site-bench"))
    parser.add_argument("--skip-warm", action="store_true", help="skip the warm full rebuild")
    parser.add_argument("--search-only", action="store_true", help="only the build with Pagefind")
    parser.add_argument(
        "--search-shard-pages", type=int, default=0, help="pass --search-shard-pages to the build"
    )
    parser.add_argument(
        "--compare-with", metavar="REV", help="only cold builds, this checkout and REV interleaved"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --compare-with or --real-registry")
    parser.add_argument(
        "--tools-per-server", type=int, default=TOOLS_PER_SERVER, help="tools per synthetic server"
    )
    parser.add_argument(
        "--real-registry", action="store_true", help="only cold full builds of the shipped registry"
    )
    options = parser.parse_args()
    options.work.mkdir(parents=True, exist_ok=True)
    print(
        "| tools | run | wall | CPU (tree) | tool pages/s, wall | tool pages/s per 2 CPU-s | peak RSS (tree) "
        "| load avg | summary |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    if options.real_registry:
        real_registry(options.work, options.rounds)
        return
    if options.compare_with:
        for size in options.sizes:
            compare(size, options.work, options.compare_with, options.rounds)
        return
    for size in options.sizes:
        bench(
            size,
            options.work,
            size in options.search_sizes,
            warm=not options.skip_warm,
            search_only=options.search_only,
            shard_pages=options.search_shard_pages,
            per_server=options.tools_per_server,
        )


if __name__ == "__main__":
    main()
