"""Added latency of `intercept run` over stdio, against server-everything's `echo`, measured against direct.

Starts server-everything directly and behind three proxies, then times sequential
`tools/call echo` round trips from a minimal blocking JSON-RPC client (so the client adds as
little as possible), interleaved in rounds so every configuration sees the same machine:

* direct: `npx -y @modelcontextprotocol/server-everything stdio`;
* proxy (memory, no audit): the proxy alone;
* proxy (defaults): SQLite state and the audit log, `echo` without limits;
* proxy (defaults, rate-limited): the same, with `echo` under a sliding rate limit, so each
  call reserves and commits in SQLite;
* bare passthrough, asyncio (reference): bench/stdio_passthrough.py, a relay that only copies
  bytes on an event loop (`add_reader`/`os.write`, the proxy's own shape over stdio);
* bare passthrough, threads (reference): the same with one blocking reader thread per
  direction, the floor for any Python process in the middle on this machine.

`--ladder` adds two more reference relays between "copy bytes" and the proxy (threads that
split lines; threads that split and decode each line with msgspec). `--compare-tree PATH`
adds the proxy (memory, no audit) imported from another source tree (PYTHONPATH=PATH), for
before/after runs or a compiled build. `--pipelined W` also measures capacity: the same calls
with W requests kept in flight, calls per second against direct (the sequential figures are
the issue's targets; this one says whether the proxy lowers what the server can serve).

Prints p50/p99 per configuration, calls per second (sequential), what the proxy adds, and the
CPU time the middle process (proxy or relay) spent per call (its own, from /proc).

    .venv/bin/python bench/proxy_latency.py [--calls 1000] [--rounds 5] [--ladder]
        [--compare-tree PATH] [--pipelined 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INTERCEPT = str(Path(sys.executable).with_name("intercept"))
EVERYTHING = ["npx", "-y", "@modelcontextprotocol/server-everything", "stdio"]
UNLIMITED = "tools:\n  echo:\n    rules:\n      - action: allow\n"
LIMITED = "tools:\n  echo:\n    rules:\n      - rate_limit: {max: 1000000000, window: 60}\n"


class Peer:
    def __init__(self, label: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.label = label
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            env=env,
        )
        assert self.process.stdout is not None
        self.reader = self.process.stdout
        self.next_id = 0
        self.samples: list[float] = []
        self.cpu_seconds = 0.0
        self.pipelined_seconds = 0.0
        self.pipelined_calls = 0
        self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        self.write({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def write(self, message: object) -> None:
        assert self.process.stdin is not None
        os.write(self.process.stdin.fileno(), json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def request(self, method: str, params: dict[str, object]) -> bytes:
        self.next_id += 1
        wanted = self.next_id
        self.write({"jsonrpc": "2.0", "id": wanted, "method": method, "params": params})
        while True:
            line = self.reader.readline()
            if not line:
                raise RuntimeError(f"{self.label}: server closed")
            message = json.loads(line)
            if isinstance(message, dict) and message.get("id") == wanted:
                return line

    def cpu_time(self) -> float:
        """CPU seconds (user + system) the process in the middle has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def timed_echo(self, calls: int) -> None:
        params = {"name": "echo", "arguments": {"message": "x"}}
        cpu_before = self.cpu_time()
        for _ in range(calls):
            began = time.perf_counter()
            line = self.request("tools/call", params)
            self.samples.append(time.perf_counter() - began)
            if b"Echo: x" not in line or b'isError":true' in line:
                raise RuntimeError(f"{self.label}: unexpected answer {line[:200]!r}")
        self.cpu_seconds += self.cpu_time() - cpu_before

    def pipelined_echo(self, calls: int, window: int) -> None:
        """`calls` echo calls with `window` requests in flight; adds to the pipelined totals."""
        params = {"name": "echo", "arguments": {"message": "x"}}
        first = self.next_id + 1
        sent = answered = 0
        began = time.perf_counter()
        while sent < min(window, calls):
            self.next_id += 1
            sent += 1
            self.write({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call", "params": params})
        while answered < calls:
            line = self.reader.readline()
            if not line:
                raise RuntimeError(f"{self.label}: server closed")
            message = json.loads(line)
            if not isinstance(message, dict) or not isinstance(message.get("id"), int):
                continue
            if not first <= message["id"] <= self.next_id or b"Echo: x" not in line:
                raise RuntimeError(f"{self.label}: unexpected answer {line[:200]!r}")
            answered += 1
            if sent < calls:
                self.next_id += 1
                sent += 1
                self.write({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call", "params": params})
        self.pipelined_seconds += time.perf_counter() - began
        self.pipelined_calls += calls

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(calls: int, rounds: int, ladder: bool, compare_tree: str | None, window: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "unlimited.yaml").write_text(UNLIMITED)
        (work / "limited.yaml").write_text(LIMITED)

        def proxy(policy: str, *options: str) -> list[str]:
            return [INTERCEPT, "run", "-c", str(work / policy), "--no-watch", *options, "--", *EVERYTHING]

        defaults = ("--state-dir", str(work / "state"), "--audit-log", str(work / "events.jsonl"))
        peers = [
            Peer("direct", EVERYTHING),
            Peer("proxy (memory, no audit)", proxy("unlimited.yaml", "--state", "memory", "--no-audit")),
            Peer("proxy (defaults)", proxy("unlimited.yaml", *defaults)),
            Peer("proxy (defaults, rate-limited)", proxy("limited.yaml", *defaults)),
        ]
        floor = str(Path(__file__).with_name("stdio_passthrough.py"))
        peers.append(Peer("bare passthrough, threads", [sys.executable, floor, *EVERYTHING]))
        peers.append(Peer("bare passthrough, asyncio", [sys.executable, floor, "--asyncio", *EVERYTHING]))
        if ladder:
            peers.append(Peer("threads, lines split", [sys.executable, floor, "--split", *EVERYTHING]))
            peers.append(
                Peer("threads, lines split + decoded", [sys.executable, floor, "--split-decode", *EVERYTHING])
            )
        if compare_tree is not None:
            env = {**os.environ, "PYTHONPATH": compare_tree}
            unlimited_proxy = proxy("unlimited.yaml", "--state", "memory", "--no-audit")
            # -P: `-m` would put the working directory first on sys.path, so run from a checkout
            # the comparison would import that checkout's code instead of the other tree's.
            command = [sys.executable, "-P", "-m", "intercept", *unlimited_proxy[1:]]
            peers.append(Peer(f"proxy (memory, no audit), {Path(compare_tree).name}", command, env))
        try:
            for peer in peers:
                peer.timed_echo(300)  # warm up (JIT in node, caches everywhere)
                peer.samples.clear()
                peer.cpu_seconds = 0.0
            for _ in range(rounds):
                for peer in peers:
                    peer.timed_echo(calls)
                    if window:
                        peer.pipelined_echo(calls, window)
        finally:
            for peer in peers:
                peer.close()
    direct = peers[0]
    base_p50 = quantile(direct.samples, 0.5)
    base_rate = len(direct.samples) / sum(direct.samples)
    print(f"{calls * rounds} sequential echo calls per configuration, {rounds} interleaved rounds")
    header = ("configuration", "p50 µs", "p99 µs", "calls/s", "added p50", "throughput", "CPU/call")
    cells = [f"{header[0]:40s}"] + [f"{h:>8s}" for h in header[1:4]] + [f"{h:>10s}" for h in header[4:]]
    print(" ".join(cells))
    for peer in peers:
        p50, p99 = quantile(peer.samples, 0.5), quantile(peer.samples, 0.99)
        rate = len(peer.samples) / sum(peer.samples)
        cpu = "" if peer is direct else f"{peer.cpu_seconds / len(peer.samples) * 1e6:8.0f}µs"
        print(
            f"{peer.label:40s} {p50 * 1e6:8.0f} {p99 * 1e6:8.0f} {rate:8.0f} {(p50 - base_p50) * 1e6:9.0f}µ "
            f"{rate / base_rate:9.0%} {cpu:>10s}"
        )
    if window:
        base_capacity = direct.pipelined_calls / direct.pipelined_seconds
        print(f"pipelined, {window} calls in flight: calls/s and share of direct")
        for peer in peers:
            capacity = peer.pipelined_calls / peer.pipelined_seconds
            print(f"{peer.label:40s} {capacity:8.0f} {capacity / base_capacity:9.0%}")
    limited, unlimited = peers[3], peers[2]
    extra = quantile(limited.samples, 0.5) - quantile(unlimited.samples, 0.5)
    print(f"SQLite-backed rate limit adds {extra * 1e6:.0f} µs at p50 over the same proxy without one")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ladder", action="store_true", help="add the split and decode relays")
    parser.add_argument("--compare-tree", metavar="PATH", help="add a proxy imported from this tree")
    parser.add_argument("--pipelined", type=int, default=0, metavar="W", help="W calls in flight too")
    args = parser.parse_args()
    main(args.calls, args.rounds, args.ladder, args.compare_tree, args.pipelined)
