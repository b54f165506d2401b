"""Added latency of `intercept run --listen --upstream` over Streamable HTTP, measured against direct calls.

Starts server-everything in streamableHttp mode, one proxy in front of it and, as references,
bench/http_passthrough.py twice (a no-op relay on the proxy's HTTP libraries: the floor for any
relay built on them; once with an aiohttp upstream client, once with the proxy's own httptools
client), then times sequential `tools/call echo` requests from one keep-alive httpx client,
direct, through each passthrough and proxied, interleaved in rounds so all see the same machine
conditions. Prints p50/p99 latency, calls per second, the p50 each relay adds, and CPU per call.

    .venv/bin/python bench/http_latency.py [--calls 2000] [--rounds 5] [--node PATH] [--baseline DIR]

`--baseline DIR` adds a second proxy run from another copy of the `intercept` package (e.g.
`git archive <commit> intercept | tar -x -C DIR`), for an A/B of two versions in the same run.
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
from tests.e2e.http_support import (
    SSE_ACCEPT,
    Service,
    everything_http,
    intercept_args,
    proxy,
    raw_session,
    rpc,
)

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


async def main(calls: int, rounds: int, node: str | None, baseline: str | None) -> None:
    everything = everything_http(node)
    policy = Path(tempfile.mkdtemp()) / "policy.yaml"
    policy.write_text("tools:\n  '*':\n    rules:\n      - {name: everything allowed, action: allow}\n")
    proxy_args = ("--state", "memory", "--no-audit", "--upstream", everything.url)
    front = proxy(policy, *proxy_args)
    services = [front]
    relays = {}
    for client_name in ("aiohttp", "httptools"):
        port = free_port()
        relays[client_name] = Service(
            [sys.executable, str(PASSTHROUGH), str(port), everything.url, client_name], port
        )
        services.append(relays[client_name])
    old_front = None
    if baseline is not None:
        port = free_port()
        args = intercept_args(policy, "--listen", f"127.0.0.1:{port}", *proxy_args)
        # -P: without it `python -m` puts the working directory (this checkout) first on the path.
        args.insert(1, "-P")
        old_front = Service(args, port, env={**os.environ, "PYTHONPATH": baseline})
        services.append(old_front)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            direct_sid = await raw_session(client, everything.url)
            # The passthroughs forward the session id, so they use the direct session.
            targets = {
                "direct": (everything, direct_sid),
                "passthrough": (relays["aiohttp"], direct_sid),
                "passthrough-httptools": (relays["httptools"], direct_sid),
                "proxied": (front, await raw_session(client, front.url)),
            }
            if old_front is not None:
                targets["proxied-baseline"] = (old_front, await raw_session(client, old_front.url))
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
        for service in services:
            service.stop()
        everything.stop()
    direct = samples["direct"]
    for name, values in samples.items():
        p50, p99 = quantile(values, 0.5) * 1000, quantile(values, 0.99) * 1000
        rate = len(values) / sum(values)
        print(f"{name:12} p50 {p50:.3f} ms  p99 {p99:.3f} ms  {rate:.0f} calls/s (n={len(values)})")
    for name in samples:
        if name == "direct":
            continue
        added = (quantile(samples[name], 0.5) - quantile(direct, 0.5)) * 1000
        mean_added = (statistics.mean(samples[name]) - statistics.mean(direct)) * 1000
        print(f"{name} adds p50 {added:.3f} ms (target <= 0.3 ms); mean {mean_added:.3f} ms")
    print("CPU per call: " + ", ".join(f"{name} {cpu[name] / len(direct) * 1000:.2f} ms" for name in cpu))
    print("(direct: server-everything's own CPU; the others: the relay process's)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--node", help="node binary to run server-everything with (default: npx)")
    parser.add_argument("--baseline", help="directory holding another version's intercept package")
    args = parser.parse_args()
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    asyncio.run(main(args.calls, args.rounds, args.node, args.baseline))
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
