"""Packages that could not be scanned: why (one reason class each), kept in one machine-readable file,
`registry/_failures.json`, which the registry loader never reads (it loads `*.yaml` only).

The error lines kept are the server's own stderr, so they are redacted: anything shaped like a
credential is replaced by `[redacted]` before it is written."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from intercept.util.fsutil import atomic_write_text

FailureReason = Literal[
    "needs-credentials", "needs-network", "crashed", "timed-out", "not-an-mcp-server", "install-failed"
]
REASONS: tuple[FailureReason, ...] = get_args(FailureReason)

FAILURES_FILE = "_failures.json"
ERROR_LINES = 8

_NETWORK = re.compile(
    r"ENOTFOUND|EAI_AGAIN|getaddrinfo|ECONNREFUSED|ENETUNREACH|EHOSTUNREACH|fetch failed|"
    r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
    r"Connection refused|ConnectError|ConnectionError|Failed to establish a new connection|"
    r"nodename nor servname|Could not resolve host|socket hang up|Max retries exceeded|NameResolutionError",
    re.IGNORECASE,
)
_CREDENTIALS = re.compile(
    r"api[ _-]?key|(?<!unexpected )token|credential|secret|password|unauthori[sz]ed|authenticat|\blogin\b|"
    r"environment variable|env var|is required|must be set|not set|missing required|access key|"
    r"\b401\b|\b403\b",
    re.IGNORECASE,
)
_NOT_SERVER = re.compile(
    r"^\s*usage:|could not determine executable|unknown command|no such command|--help|"
    r"is not a valid JSON-RPC|Unexpected token|Invalid JSON|JSONRPCMessage|validation error.*jsonrpc",
    re.IGNORECASE | re.MULTILINE,
)
ENV_NAME = re.compile(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b")
_SECRETISH_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASS|AUTH|CREDENTIAL|_ID$|_URL$|_HOST$|ACCOUNT|USER")


def classify_failure(message: str, stderr_tail: str) -> FailureReason:
    """The reason class for a failed scan, from the scan error and the server's last stderr lines."""
    if "did not list its tools within" in message:
        return "timed-out"
    # The last lines say what killed it; earlier ones are often a traceback mentioning anything.
    last = "\n".join([line for line in stderr_tail.splitlines() if line.strip()][-3:])
    if _NETWORK.search(f"{last}\n{message}"):
        return "needs-network"
    if _CREDENTIALS.search(last):
        return "needs-credentials"
    if _NOT_SERVER.search(f"{stderr_tail}\n{message}"):
        return "not-an-mcp-server"
    return "crashed"


def env_names_asked_for(stderr_tail: str) -> list[str]:
    """Environment variable names a dying server says it needs (`BRAVE_API_KEY is required`):
    upper-case names that look like credentials or endpoints, on lines that complain."""
    names: list[str] = []
    for line in stderr_tail.splitlines():
        if not _CREDENTIALS.search(line):
            continue
        for name in ENV_NAME.findall(line):
            if _SECRETISH_NAME.search(name) and name not in names:
                names.append(name)
    return names[:8]


_REDACTIONS = [
    (re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (
        re.compile(r"(?i)\b([\w-]*(?:key|token|secret|password|passwd|pwd|auth)[\w-]*)(\s*[=:]\s*)\S+"),
        r"\1\2[redacted]",
    ),
    (re.compile(r"\b(?:sk|pk|rk|ghp|gho|ghs|github_pat|xox[abpr]|AKIA)[A-Za-z0-9_-]{8,}\b"), "[redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"), "[redacted]"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "://[redacted]@"),
    (re.compile(r"\b[A-Fa-f0-9]{32,}\b|(?<![/.\w-])[A-Za-z0-9+_-]{40,}={0,2}"), "[redacted]"),
]


def redact(text: str) -> str:
    """`text` with credential-shaped substrings (tokens, keys, `key=value`, URL passwords) removed."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True, slots=True)
class Failure:
    ecosystem: str
    package: str
    version: str | None
    date: str
    reason: FailureReason
    error: list[str]


def make_failure(
    ecosystem: str, package: str, version: str | None, reason: FailureReason, message: str, tail: str
) -> Failure:
    tail_lines = [line[:300] for line in tail.splitlines() if line.strip()][-(ERROR_LINES - 1) :]
    lines = [message.splitlines()[0][:300] if message.strip() else "failed", *tail_lines]
    return Failure(
        ecosystem,
        package,
        version,
        datetime.now(UTC).strftime("%Y-%m-%d"),
        reason,
        [redact(x) for x in lines],
    )


class FailureLog:
    """`registry/_failures.json`: one record per package, its latest failed attempt. Safe to use from
    several threads; every change rewrites the file atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._records: dict[str, Failure] = {f"{f.ecosystem}:{f.package}": f for f in read_failures(path)}

    def record(self, failure: Failure) -> None:
        with self._lock:
            self._records[f"{failure.ecosystem}:{failure.package}"] = failure
            self._save()

    def clear(self, ecosystem: str, package: str) -> None:
        with self._lock:
            if self._records.pop(f"{ecosystem}:{package}", None) is not None:
                self._save()

    def _save(self) -> None:
        rows = [asdict(f) for _, f in sorted(self._records.items())]
        document = {"counts": counts(self._records.values()), "failures": rows}
        atomic_write_text(self.path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def read_failures(path: Path) -> list[Failure]:
    if not path.is_file():
        return []
    data: Any = json.loads(path.read_text(encoding="utf-8"))
    out: list[Failure] = []
    for row in data.get("failures", []) if isinstance(data, dict) else []:
        if isinstance(row, dict) and row.get("reason") in REASONS:
            out.append(Failure(**{k: row.get(k) for k in Failure.__slots__}))  # type: ignore[arg-type]
    return out


def counts(failures: Any) -> dict[str, int]:
    tally = Counter(f.reason for f in failures)
    return {reason: tally.get(reason, 0) for reason in REASONS}
