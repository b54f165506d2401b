"""Added latency of `intercept run --listen --upstream` for 2026-07-28 stateless requests.

Starts the MCP Python SDK's `MCPServer` (tests/e2e/modern_server.py) in Streamable HTTP mode and
`intercept run --listen --upstream` in front of it, plus, with `--baseline DIR`, a second proxy
from another copy of the `intercept` package (e.g. `git archive <commit> intercept | tar -x -C
DIR`). Times sequential stateless `tools/call add` requests (no session: each one gets its own
router and upstream channel in the proxy) from one keep-alive httpx client, interleaved in rounds.

    .venv/bin/python bench/http_stateless_latency.py [--calls 600] [--rounds 4] [--baseline DIR]
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

from tests.e2e.http_support import MODERN, SSE_ACCEPT, Service, free_port, intercept_args, rpc
from tests.e2e.http_support import MODERN_META as META

HEADERS = {**SSE_ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "add"}
SERVER = Path(__file__).resolve().parents[1] / "tests" / "e2e" / "modern_server.py"


async def timed_calls(client: httpx.AsyncClient, url: str, calls: int) -> list[float]:
    samples: list[float] = []
    for i in range(calls):
        body = rpc("tools/call", i, name="add", arguments={"a": i, "b": 1}, **META)
        began = time.perf_counter()
        response = await client.post(url, json=body, headers=HEADERS)
        samples.append(time.perf_counter() - began)
        if response.status_code != 200 or str(i + 1) not in response.text:
            raise RuntimeError(f"unexpected answer: {response.status_code} {response.text[:200]!r}")
    return samples


def listener(policy: Path, upstream: str, baseline: str | None = None) -> Service:
    port = free_port()
    args = intercept_args(policy, "--listen", f"127.0.0.1:{port}", "--state", "memory", "--no-audit")
    args += ["--upstream", upstream]
    if baseline is None:
        return Service(args, port)
    args.insert(1, "-P")  # without it `python -m` puts this checkout first on the path
    return Service(args, port, env={**os.environ, "PYTHONPATH": baseline})


async def main(calls: int, rounds: int, baseline: str | None) -> None:
    port = free_port()
    server = Service([sys.executable, str(SERVER), str(port)], port)
    policy = Path(tempfile.mkdtemp()) / "policy.yaml"
    policy.write_text("tools: {}\n")
    targets = {"direct": server, "proxied": listener(policy, server.url)}
    if baseline is not None:
        targets["proxied-baseline"] = listener(policy, server.url, baseline)
    samples: dict[str, list[float]] = {name: [] for name in targets}
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for service in targets.values():
                await timed_calls(client, service.url, 30)  # warm-up
            for _ in range(rounds):
                for name, service in targets.items():
                    samples[name] += await timed_calls(client, service.url, calls // rounds)
    finally:
        for service in targets.values():
            service.stop()
    direct = statistics.median(samples["direct"])
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"{name:17} p50 {p50 * 1000:.3f} ms  adds {(p50 - direct) * 1000:.3f} ms (n={len(values)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--baseline", help="directory holding another version's intercept package")
    args = parser.parse_args()
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    asyncio.run(main(args.calls, args.rounds, args.baseline))
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
