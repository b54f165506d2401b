"""Engine decision time for a 1,000-tool policy (the issue's target: at most 10 µs per decision).

Builds a policy with 1,000 tools of mixed rules (allow, argument conditions, deny rules,
rate limits, required_args) plus `"*"` rules, compiles it once, then times:

* `Engine.check` (the pure part) for several kinds of call, and
* `Engine.decide` with the in-memory store, including the counter reservation,
* `Engine.decide` with the SQLite store (one reserve transaction on a tmpfs-free temp dir).

    .venv/bin/python bench/engine_decide.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intercept.engine import Engine, ToolCall, ToolSchema
from intercept.policy import load_policy_text
from intercept.state.base import Reservation
from intercept.state.memory import MemoryStore
from intercept.state.sqlite import SqliteStore


def policy_text(tools: int) -> str:
    lines = ['version: "1"', "default: allow", "hide: [hidden_0, hidden_1]", "tools:"]
    for i in range(tools):
        lines.append(f"  tool_{i}:")
        lines.append("    rules:")
        kind = i % 4
        if kind == 0:
            lines.append("      - action: allow")
        elif kind == 1:
            lines += [
                "      - name: amount cap",
                "        conditions:",
                "          - path: args.amount",
                "            op: lte",
                "            value: 50000",
                "          - path: args.env",
                "            op: regex",
                "            value: '^(dev|staging)-'",
            ]
        elif kind == 2:
            lines += [
                "      - action: deny",
                "        conditions:",
                "          - path: args.force",
                "            op: eq",
                "            value: true",
                "      - validate:",
                "          required_args: true",
            ]
        else:
            lines += ["      - rate_limit: {max: 1000000000, window: 60}"]
    lines += [
        '  "*":',
        "    rules:",
        "      - name: no prod",
        "        action: deny",
        "        conditions:",
        "          - path: args.env",
        "            op: eq",
        "            value: prod-main",
    ]
    return "\n".join(lines) + "\n"


CALLS = {
    "allow-only tool": ToolCall("tool_0", {"x": 1}),
    "two argument conditions": ToolCall("tool_1", {"amount": 1200, "env": "dev-eu"}),
    "deny rule + required_args": ToolCall("tool_2", {"a": 1, "b": 2}),
    "rate-limited tool": ToolCall("tool_3", {}),
    "unlisted tool (default)": ToolCall("other", {}),
    "hidden tool": ToolCall("hidden_0", {}),
}


def per_call_us(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(runs)


async def per_decide_us(engine: Engine, store, call: ToolCall, schemas, calls: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        for i in range(calls):
            decision = await engine.decide(call, store, 1_764_115_200.0 + i * 1e-3, schemas)
            reservation = getattr(decision, "reservation", None)
            if isinstance(reservation, Reservation):
                await store.commit(reservation)
        runs.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(runs)


async def main(calls: int) -> None:
    text = policy_text(1000)
    began = time.perf_counter()
    engine = Engine(load_policy_text(text))
    compile_ms = (time.perf_counter() - began) * 1e3
    schemas = {"tool_2": ToolSchema.learn({"type": "object", "required": ["a", "b"]})}
    print(f"policy: 1000 tools, {len(text)} bytes; load + compile {compile_ms:.1f} ms")
    print(f"{'call':28s} {'check (µs)':>11s} {'decide, memory (µs)':>20s}")
    for label, call in CALLS.items():
        check = per_call_us(lambda call=call: engine.check(call, schemas), calls)
        memory = await per_decide_us(engine, MemoryStore(), call, schemas, calls // 4)
        print(f"{label:28s} {check:11.2f} {memory:20.2f}")
    with tempfile.TemporaryDirectory() as directory:
        store = SqliteStore.in_directory(Path(directory))
        sqlite_us = await per_decide_us(engine, store, CALLS["rate-limited tool"], schemas, 5000)
        await store.close()
    print(f"rate-limited tool, decide with SQLite store (reserve + commit): {sqlite_us:.1f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().calls))
