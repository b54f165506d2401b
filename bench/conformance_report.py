"""Run the official MCP conformance suite against server-everything, direct and through Intercept,
and write the results the site's about page publishes (generator/site/data/conformance.json).

Usage: python bench/conformance_report.py [--out FILE] [--node-dir DIR]

The suite (`@modelcontextprotocol/conformance`, pinned below) needs Node 22; it is installed with npm
into .cache/node22 on first use, as tests/e2e/test_conformance.py does. server-everything runs in
streamableHttp mode on a loopback port; the proxied run goes through
`intercept run --listen 127.0.0.1:PORT --upstream <server-everything>` with an allow-all policy.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUITE = "@modelcontextprotocol/conformance"
SUITE_VERSION = "0.1.16"
EVERYTHING = "@modelcontextprotocol/server-everything"
OUT = ROOT / "generator" / "site" / "data" / "conformance.json"


def _node_package() -> str:
    arch = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    return f"node-{platform.system().lower()}-{arch}"


def toolchain(prefix: Path) -> tuple[str, Path, Path]:
    """(node 22, conformance CLI script, server-everything script), installed with npm if missing."""
    modules = prefix / "node_modules"
    node = modules / _node_package() / "bin" / "node"
    cli = modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    everything = modules / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    if not (node.exists() and cli.exists() and everything.exists()):
        npm = shutil.which("npm")
        if npm is None:
            sys.exit("npm is needed to install Node 22 and the conformance suite")
        prefix.mkdir(parents=True, exist_ok=True)
        packages = [f"{_node_package()}@22", f"{SUITE}@{SUITE_VERSION}", EVERYTHING]
        subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", *packages], check=True
        )
    return str(node), cli, everything


def _package_version(script: Path) -> str:
    manifest = script.parent.parent / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Process:
    """A background process on a loopback port, in its own process group so it stops with its children."""

    def __init__(self, args: list[str], port: int, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{args[0]} exited with {self.process.returncode} before listening")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
            time.sleep(0.05)
        self.stop()
        sys.exit(f"nothing listened on 127.0.0.1:{port}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


def run_suite(node: str, cli: Path, url: str, out: Path) -> dict[str, list[dict[str, Any]]]:
    """Every scenario's checks, as the suite wrote them (it exits non-zero when any check fails)."""
    subprocess.run([node, str(cli), "server", "--url", url, "-o", str(out)], capture_output=True, timeout=900)
    results = {}
    for scenario in sorted(out.iterdir()):
        name = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", scenario.name)
        results[name] = json.loads((scenario / "checks.json").read_text())
    if not results:
        sys.exit("the conformance suite produced no results")
    return results


def _tally(checks: list[dict[str, Any]]) -> dict[str, int]:
    passed = sum(1 for c in checks if c.get("status") == "SUCCESS")
    return {"checks": len(checks), "passed": passed, "failed": len(checks) - passed}


def _outcomes(checks: list[dict[str, Any]]) -> list[tuple[Any, Any, Any]]:
    return [(c.get("id"), c.get("status"), c.get("errorMessage")) for c in checks]


def report(node_dir: Path) -> dict[str, Any]:
    node, cli, everything_script = toolchain(node_dir)
    node_version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    port = _free_port()
    server = _Process(
        [node, str(everything_script), "streamableHttp"], port, {**os.environ, "PORT": str(port)}
    )
    with tempfile.TemporaryDirectory(prefix="conformance-") as work:
        tmp = Path(work)
        policy = tmp / "allow.yaml"
        policy.write_text("tools: {}\n")
        try:
            direct = run_suite(node, cli, server.url, tmp / "direct")
            proxy_port = _free_port()
            command = [
                sys.executable,
                "-m",
                "intercept",
                "run",
                "-c",
                str(policy),
                "--no-watch",
                "--state",
                "memory",
                "--no-audit",
                "--listen",
                f"127.0.0.1:{proxy_port}",
                "--upstream",
                server.url,
            ]
            proxy = _Process(command, proxy_port, dict(os.environ))
            try:
                proxied = run_suite(node, cli, proxy.url, tmp / "proxied")
            finally:
                proxy.stop()
        finally:
            server.stop()
    scenarios = []
    for name in sorted(set(direct) | set(proxied)):
        d, p = direct.get(name, []), proxied.get(name, [])
        scenarios.append(
            {
                "name": name,
                "direct": _tally(d),
                "proxied": _tally(p),
                "identical": _outcomes(d) == _outcomes(p),
            }
        )
    return {
        "suite": SUITE,
        "suite_version": _package_version(cli),
        "date": dt.date.today().isoformat(),
        "node": node_version,
        "server": f"{EVERYTHING} {_package_version(everything_script)} (streamableHttp)",
        "proxy_command": "intercept run -c allow.yaml --state memory --no-audit --listen 127.0.0.1:PORT "
        "--upstream http://127.0.0.1:PORT/mcp",
        "scenarios": scenarios,
        "totals": {
            "direct": _tally([c for checks in direct.values() for c in checks]),
            "proxied": _tally([c for checks in proxied.values() for c in checks]),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--node-dir",
        type=Path,
        default=Path(os.environ.get("INTERCEPT_NODE22_DIR", ROOT / ".cache" / "node22")),
    )
    args = parser.parse_args()
    data = report(args.node_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    totals = data["totals"]
    print(
        f"{data['suite']}@{data['suite_version']} on {data['date']}: direct {totals['direct']['passed']}/"
        f"{totals['direct']['checks']} checks passed, through Intercept {totals['proxied']['passed']}/"
        f"{totals['proxied']['checks']}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
