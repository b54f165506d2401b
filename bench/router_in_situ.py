"""The proxy's own work per message, timed inside a running relay between real processes.

`bench/router_roundtrip.py` times the Router in a tight loop, where every cache is warm. This
one times the same steps where they really run: in a process that sleeps between messages.
It starts server-everything behind a small relay (one blocking reader thread per direction,
the real `Router` with the memory store, no audit), drives sequential `tools/call echo` from
the same minimal client as bench/proxy_latency.py, and reports, per step, the median and 90th
percentile of its duration in the relay, next to the same step timed warm in a loop.

    .venv/bin/python bench/router_in_situ.py [--calls 5000]

Run without arguments it is the driver; `--relay POLICY CMD...` is the relay it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import proxy_latency

from intercept.engine import Engine
from intercept.policy import load_policy, load_policy_text
from intercept.protocol import jsonrpc
from intercept.proxy import Router
from intercept.state.memory import MemoryStore
from intercept.transport.stdio import LineSplitter

STEPS = ("split", "parse", "classify", "decide", "from_client", "from_upstream", "write")
READ_CHUNK = 65536


class Timings:
    def __init__(self) -> None:
        self.samples: dict[str, list[int]] = {step: [] for step in STEPS}

    def timed(self, step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        samples, clock = self.samples[step], time.perf_counter_ns

        def wrapper(*args: Any) -> Any:
            began = clock()
            result = function(*args)
            samples.append(clock() - began)
            return result

        return wrapper

    def timed_async(self, step: str, function: Callable[..., Any]) -> Callable[..., Any]:
        samples, clock = self.samples[step], time.perf_counter_ns

        async def wrapper(*args: Any) -> Any:
            began = clock()
            result = await function(*args)
            samples.append(clock() - began)
            return result

        return wrapper


def instrument(timings: Timings) -> None:
    """Wrap the Router's steps (module attributes it looks up on every call) with timers."""
    jsonrpc.parse_canonical = timings.timed("parse", jsonrpc.parse_canonical)  # type: ignore[assignment]
    jsonrpc.classify = timings.timed("classify", jsonrpc.classify)  # type: ignore[assignment]
    Engine.decide = timings.timed_async("decide", Engine.decide)  # type: ignore[method-assign]


def drive(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        coroutine.send(None)
    except StopIteration:
        return
    raise RuntimeError("the router suspended; this relay only runs stores that never do")


def relay(policy: Path, command: list[str], report: Path) -> None:
    timings = Timings()
    instrument(timings)
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert child.stdin is not None and child.stdout is not None
    to_child, from_child = child.stdin.fileno(), child.stdout.fileno()
    write = timings.timed("write", os.write)

    async def send_client(data: bytes) -> None:
        write(1, data + b"\n")

    async def send_upstream(data: bytes) -> None:
        write(to_child, data + b"\n")

    router = Router(
        Engine(load_policy(policy)), MemoryStore(), send_client=send_client, send_upstream=send_upstream
    )
    lock = threading.Lock()

    def pump(read_fd: int, handle: Callable[[bytes], Coroutine[Any, Any, None]], step: str) -> None:
        splitter = LineSplitter(16 * 1024 * 1024)
        split = timings.timed("split", splitter.feed)
        handled = timings.samples[step]
        while chunk := os.read(read_fd, READ_CHUNK):
            for frame in split(chunk):
                if isinstance(frame, bytes):
                    began = time.perf_counter_ns()
                    with lock:
                        drive(handle(frame))
                    handled.append(time.perf_counter_ns() - began)

    upward = (from_child, router.from_upstream, "from_upstream")
    threading.Thread(target=pump, args=upward, daemon=True).start()
    pump(0, router.from_client, "from_client")
    child.stdin.close()
    child.wait()
    report.write_text(json.dumps(timings.samples))


def warm(calls: int) -> dict[str, list[int]]:
    """The same steps, timed in a loop with nothing else running in between."""
    timings = Timings()
    instrument(timings)

    async def nowhere(data: bytes) -> None:
        return None

    policy = load_policy_text(proxy_latency.UNLIMITED)
    router = Router(Engine(policy), MemoryStore(), send_client=nowhere, send_upstream=nowhere)
    request = (
        b'{"jsonrpc":"2.0","id":%d,"method":"tools/call",'
        b'"params":{"name":"echo","arguments":{"message":"x"}}}'
    )
    answer = b'{"result":{"content":[{"type":"text","text":"Echo: x"}]},"jsonrpc":"2.0","id":%d}'
    client, upstream = timings.samples["from_client"], timings.samples["from_upstream"]
    split = timings.timed("split", LineSplitter(16 * 1024 * 1024).feed)
    for number in range(calls):
        split(request % number + b"\n")
        began = time.perf_counter_ns()
        drive(router.from_client(request % number))
        client.append(time.perf_counter_ns() - began)
        began = time.perf_counter_ns()
        drive(router.from_upstream(answer % number))
        upstream.append(time.perf_counter_ns() - began)
    return timings.samples


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000 if ordered else float("nan")


def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy, report = Path(tmp) / "policy.yaml", Path(tmp) / "timings.json"
        policy.write_text(proxy_latency.UNLIMITED)
        command = [sys.executable, __file__, "--relay", str(policy), str(report), *proxy_latency.EVERYTHING]
        peer = proxy_latency.Peer("relay", command)
        peer.timed_echo(calls)
        p50 = proxy_latency.quantile(peer.samples, 0.5)
        peer.close()
        recorded: dict[str, list[int]] = json.loads(report.read_text())
        # The first fifth is the warm-up of node and the relay.
        in_situ = {step: samples[len(samples) // 5 :] for step, samples in recorded.items()}
    in_loop = warm(calls)
    print(f"{calls} sequential echo calls through the instrumented relay; round trip p50 {p50 * 1e6:.0f} µs")
    print(f"{'step (per message)':22s} {'in the relay p50':>17s} {'p90':>8s} {'warm loop p50':>14s}")
    for step in STEPS:
        if not in_situ[step]:
            continue
        warm_p50 = f"{percentile(in_loop[step], 0.5):11.1f} µs" if in_loop[step] else ""
        print(
            f"{step:22s} {percentile(in_situ[step], 0.5):14.1f} µs {percentile(in_situ[step], 0.9):5.1f} µs"
            f" {warm_p50:>14s}"
        )
    print("in the relay, from_client and from_upstream include their steps and one write each;")
    print("in the warm loop they include their steps and no write (sends go nowhere)")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--relay"]:
        relay(Path(sys.argv[2]), sys.argv[4:], Path(sys.argv[3]))
    else:
        parser = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument("--calls", type=int, default=5000)
        main(parser.parse_args().calls)
