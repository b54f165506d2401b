"""The built wheel installs into a fresh venv and `intercept scaffold trigger-dev` works outside the checkout.

Needs PyPI (or a warm uv/pip cache) for the build backend and the dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "scaffold" / "trigger-dev.yaml"

pytestmark = pytest.mark.slow


def _uv() -> str | None:
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _clean_env() -> dict[str, str]:
    """The environment minus anything that could make the checkout importable."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy so build artefacts never land in the checkout.
    src = tmp_path_factory.mktemp("src") / "intercept"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            ".cache",
            "site",
            "dist",
            "build",
            "node_modules",
            "__pycache__",
            "*_cache",
            "test-artifacts",
            ".intercept",
        ),
    )
    dist = tmp_path_factory.mktemp("dist")
    uv = _uv()
    if uv:
        _run([uv, "build", "--wheel", "--out-dir", str(dist), str(src)], src, _clean_env())
    else:
        _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)], src, _clean_env())
    (built,) = dist.glob("intercept_mcp-*.whl")
    return built


def test_wheel_carries_registry_and_templates(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "generator/_data/registry/trigger-dev.yaml" in names
    assert any(n.startswith("generator/_data/templates/") for n in names)
    assert "intercept/__main__.py" in names
    assert not any(n.startswith(("tests/", "registry/")) for n in names)


def test_installed_wheel_scaffolds_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = _clean_env()
    uv = _uv()
    if uv:
        _run([uv, "venv", "--python", sys.executable, str(venv)], tmp_path, env)
        _run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), str(wheel)], tmp_path, env)
    else:
        _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
        _run([str(venv / "bin" / "pip"), "install", str(wheel)], tmp_path, env)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()

    probe = "import generator.resources as r, intercept; print(r.registry_dir()); print(intercept.__file__)"
    where = _run([str(venv / "bin" / "python"), "-c", probe], workdir, env).stdout.splitlines()
    assert all(line.startswith(str(venv)) for line in where), where

    done = _run([str(venv / "bin" / "intercept"), "scaffold", "trigger-dev"], workdir, env)
    assert done.stdout == GOLDEN.read_text(encoding="utf-8")

    python = str(venv / "bin" / "python")
    module = _run([python, "-m", "intercept", "scaffold", "trigger-dev", "-o", "p.yaml"], workdir, env)
    assert (workdir / "p.yaml").read_bytes() == GOLDEN.read_bytes(), module.stderr
    valid = _run([str(venv / "bin" / "intercept"), "validate", "-c", "p.yaml"], workdir, env)
    assert valid.stdout == "p.yaml: policy is valid: 55 tools, 71 rules, 0 hidden, default allow\n"
