"""The proxy's own work per `tools/call` round trip, in-process: no pipes, no server, no scheduler.

Feeds `Router.from_client` a `tools/call echo` and `Router.from_upstream` its answer, N times,
with the sends going nowhere, for three set-ups: memory store without audit; SQLite store with
the audit log and `echo` unlimited; the same with `echo` rate-limited (a SQLite reserve per
call). Audit events are queued, not written (their file write happens after forwarding in the
proxy, off the call's path). Prints the median of `--runs` runs.

    .venv/bin/python bench/router_roundtrip.py [--calls 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from intercept.audit import AuditLog
from intercept.engine import Engine
from intercept.policy import load_policy_text
from intercept.proxy import Router
from intercept.state.base import CounterStore
from intercept.state.memory import MemoryStore
from intercept.state.sqlite import SqliteStore

UNLIMITED = "tools:\n  echo:\n    rules:\n      - action: allow\n"
LIMITED = "tools:\n  echo:\n    rules:\n      - rate_limit: {max: 1000000000, window: 60}\n"
REQUEST = (
    b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}'
)
ANSWER = b'{"result":{"content":[{"type":"text","text":"Echo: x"}]},"jsonrpc":"2.0","id":%d}'


async def _nowhere(data: bytes) -> None:
    return None


async def one_run(policy: str, durable: bool, calls: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store: CounterStore = SqliteStore(work / "counters.sqlite3") if durable else MemoryStore()
        audit = AuditLog(work / "events.jsonl") if durable else None
        router = Router(
            Engine(load_policy_text(policy)), store, send_client=_nowhere, send_upstream=_nowhere, audit=audit
        )
        began = time.perf_counter()
        for message_id in range(calls):
            await router.from_client(REQUEST % message_id)
            await router.from_upstream(ANSWER % message_id)
        elapsed = time.perf_counter() - began
        await store.close()
        if audit is not None:
            audit.close()
        return elapsed / calls


def main(calls: int, runs: int) -> None:
    cases = [
        ("memory store, no audit", UNLIMITED, False),
        ("SQLite store + audit log, unlimited echo", UNLIMITED, True),
        ("SQLite store + audit log, rate-limited echo", LIMITED, True),
    ]
    for label, policy, durable in cases:
        samples = [asyncio.run(one_run(policy, durable, calls)) for _ in range(runs)]
        print(f"{label:45s} {statistics.median(samples) * 1e6:6.1f} µs per round trip")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    main(args.calls, args.runs)
