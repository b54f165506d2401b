"""Rate-limited calls per second with four `intercept run` instances sharing one Redis.

Two measurements, same run:

1. store only: four processes, each running 32 concurrent reserve+commit loops on one
   shared sliding-window counter in a RedisStore; reports reservations/s and p50 latency;
2. end to end: four proxies (`--listen --upstream`, server-everything streamableHttp behind
   them) with a rate-limited `echo`, driven by concurrent keep-alive clients; reports calls/s
   with `--state redis://...` and, for comparison, `--state memory` (limits not shared).

    .venv/bin/python bench/redis_throughput.py [--calls 4000] [--node PATH]

Needs redis-server on PATH (started here on a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intercept.state.base import CounterCheck, Reservation
from intercept.state.redis import RedisStore
from tests.e2e.http_support import (
    SSE_ACCEPT,
    everything_http,
    free_port,
    proxy,
    raw_session,
    rpc,
    wait_for_port,
)

INSTANCES = 4
ARGS = {"message": "x"}
POLICY = """\
tools:
  echo:
    rules:
      - name: echo budget
        rate_limit: {max: 1000000000, window: 3600}
"""


def _store_worker(
    dsn: str, prefix: str, seconds: float, queue: multiprocessing.Queue[tuple[int, list[float]]]
) -> None:
    async def run() -> tuple[int, list[float]]:
        store = RedisStore.from_dsn(dsn, prefix)
        check = CounterCheck("bench", "sliding", 3600, 1.0, "lte", 1e9)
        latencies: list[float] = []
        deadline = time.monotonic() + seconds

        async def loop() -> None:
            while time.monotonic() < deadline:
                began = time.perf_counter()
                reservation = await store.reserve([check], time.time())
                assert isinstance(reservation, Reservation)
                await store.commit(reservation)
                latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(loop() for _ in range(32)))
        await store.close()
        return len(latencies), latencies

    queue.put(asyncio.run(run()))


async def store_latency(dsn: str, rounds: int = 2000) -> None:
    store = RedisStore.from_dsn(dsn, f"bench{uuid.uuid4().hex[:8]}")
    check = CounterCheck("bench", "sliding", 3600, 1.0, "lte", 1e9)
    latencies: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        reservation = await store.reserve([check], time.time())
        assert isinstance(reservation, Reservation)
        await store.commit(reservation)
        latencies.append(time.perf_counter() - began)
    await store.close()
    latencies.sort()
    print(
        f"store: one client, sequential reserve+commit: p50 {latencies[rounds // 2] * 1000:.3f} ms, "
        f"p99 {latencies[int(rounds * 0.99)] * 1000:.3f} ms"
    )


def store_throughput(dsn: str, seconds: float = 5.0) -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    queue: multiprocessing.Queue[tuple[int, list[float]]] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_store_worker, args=(dsn, prefix, seconds, queue))
        for _ in range(INSTANCES)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    total = sum(n for n, _ in results)
    latencies = sorted(x for _, xs in results for x in xs)
    print(
        f"store: {INSTANCES} processes x 32 loops, reserve+commit: {total / seconds:.0f}/s, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.2f} ms (with 32 in flight per process)"
    )


async def end_to_end(state: list[str], upstream: str, calls: int, label: str) -> None:
    policy = Path(tempfile.mkdtemp()) / "policy.yaml"
    policy.write_text(POLICY)
    proxies = [proxy(policy, *state, "--no-audit", "--upstream", upstream) for _ in range(INSTANCES)]
    try:
        async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=200)) as client:
            sessions = [await raw_session(client, p.url) for p in proxies]
            per_instance = calls // INSTANCES
            in_flight = 16

            async def drive(index: int) -> int:
                url = proxies[index].url
                headers = {
                    **SSE_ACCEPT,
                    "mcp-session-id": sessions[index],
                    "mcp-protocol-version": "2025-11-25",
                }
                admitted = 0
                for i in range(index * per_instance, (index + 1) * per_instance, in_flight):
                    batch = [
                        client.post(
                            url,
                            json=rpc("tools/call", j, name="echo", arguments={"message": "x"}),
                            headers=headers,
                        )
                        for j in range(i, min(i + in_flight, (index + 1) * per_instance))
                    ]
                    for response in await asyncio.gather(*batch):
                        admitted += b'"isError":true' not in response.content
                return admitted

            began = time.perf_counter()
            admitted = sum(await asyncio.gather(*(drive(i) for i in range(INSTANCES))))
            elapsed = time.perf_counter() - began
    finally:
        for service in proxies:
            service.stop()
    print(
        f"end to end, {label}: {calls / elapsed:.0f} calls/s across {INSTANCES} proxies ({admitted} admitted)"
    )


async def main(calls: int, node: str | None) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed")
    port = free_port()
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    redis = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, redis, log)
    dsn = f"redis://127.0.0.1:{port}/0"
    everything = everything_http(node)
    try:
        await store_latency(dsn)
        store_throughput(dsn)
        await end_to_end(
            ["--state", dsn, "--state-prefix", uuid.uuid4().hex[:8]], everything.url, calls, "redis"
        )
        await end_to_end(["--state", "memory"], everything.url, calls, "memory")
    finally:
        everything.stop()
        redis.terminate()
        redis.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--node", help="node binary to run server-everything with (default: npx)")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.node))
