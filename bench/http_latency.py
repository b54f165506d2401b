"""Added latency of `intercept run --listen --upstream` over Streamable HTTP, measured against direct calls.

Starts server-everything in streamableHttp mode, one proxy in front of it and, as a reference,
bench/http_passthrough.py (a no-op relay on the same HTTP libraries: the floor for any relay
built on them), then times sequential `tools/call echo` requests from one keep-alive httpx
client, direct, through the passthrough and proxied, interleaved in rounds so all see the same
machine conditions. Prints p50/p99 latency, calls per second, and the p50 each relay adds.

    .venv/bin/python bench/http_latency.py [--calls 2000] [--rounds 5] [--node PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import free_port
from tests.e2e.http_support import SSE_ACCEPT, Service, everything_http, proxy, raw_session, rpc

PASSTHROUGH = Path(__file__).with_name("http_passthrough.py")


async def timed_calls(
    client: httpx.AsyncClient, url: str, sid: str, calls: int, start_id: int
) -> list[float]:
    # As the MCP SDK clients do after initialize; server-everything is measurably slower with it.
    headers = {**SSE_ACCEPT, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
    samples: list[float] = []
    for i in range(calls):
        body = rpc("tools/call", start_id + i, name="echo", arguments={"message": "x"})
        began = time.perf_counter()
        response = await client.post(url, json=body, headers=headers)
        await response.aread()
        samples.append(time.perf_counter() - began)
        if b"Echo: x" not in response.content:
            raise RuntimeError(f"unexpected answer: {response.content[:200]!r}")
    return samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its descendants (npx starts node as a child) have used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return total + sum(cpu_seconds(int(child)) for child in children)


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(calls: int, rounds: int, node: str | None) -> None:
    everything = everything_http(node)
    policy = Path(tempfile.mkdtemp()) / "policy.yaml"
    policy.write_text("tools:\n  '*':\n    rules:\n      - {name: everything allowed, action: allow}\n")
    front = proxy(policy, "--state", "memory", "--no-audit", "--upstream", everything.url)
    port = free_port()
    passthrough = Service([sys.executable, str(PASSTHROUGH), str(port), everything.url], port)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            direct_sid = await raw_session(client, everything.url)
            proxied_sid = await raw_session(client, front.url)
            # The passthrough forwards the session id, so it uses the direct session.
            targets = {
                "direct": (everything, direct_sid),
                "passthrough": (passthrough, direct_sid),
                "proxied": (front, proxied_sid),
            }
            samples: dict[str, list[float]] = {name: [] for name in targets}
            cpu = dict.fromkeys(targets, 0.0)
            for service, sid in targets.values():
                await timed_calls(client, service.url, sid, 200, 10_000_000)  # warm-up
            for r in range(rounds):
                for name, (service, sid) in targets.items():
                    before = cpu_seconds(service.process.pid)
                    samples[name] += await timed_calls(client, service.url, sid, calls // rounds, r * calls)
                    cpu[name] += cpu_seconds(service.process.pid) - before
    finally:
        passthrough.stop()
        front.stop()
        everything.stop()
    direct = samples["direct"]
    for name, values in samples.items():
        p50, p99 = quantile(values, 0.5) * 1000, quantile(values, 0.99) * 1000
        rate = len(values) / sum(values)
        print(f"{name:12} p50 {p50:.3f} ms  p99 {p99:.3f} ms  {rate:.0f} calls/s (n={len(values)})")
    for name in ("passthrough", "proxied"):
        added = (quantile(samples[name], 0.5) - quantile(direct, 0.5)) * 1000
        mean_added = (statistics.mean(samples[name]) - statistics.mean(direct)) * 1000
        print(f"{name} adds p50 {added:.3f} ms (target <= 0.3 ms); mean {mean_added:.3f} ms")
    print(
        f"CPU per call: server-everything {cpu['direct'] / len(direct) * 1000:.2f} ms (direct calls), "
        f"passthrough {cpu['passthrough'] / len(direct) * 1000:.2f} ms, "
        f"intercept proxy {cpu['proxied'] / len(direct) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--node", help="node binary to run server-everything with (default: npx)")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds, args.node))
