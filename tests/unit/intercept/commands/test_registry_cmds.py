"""`intercept registry refresh` and `add` on a local fake server: resumable runs and recorded failures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from generator.catalog.failures import FAILURES_FILE, read_failures
from intercept.cli import main

FAKE = str(Path(__file__).parent.parent / "fake_mcp_server.py")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _binary_entry(directory: Path, slug: str, args: list[str]) -> Path:
    path = directory / f"{slug}.yaml"
    assert run("scan", "-o", str(path), "--", sys.executable, FAKE, "paged")[0] == 0
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["run"] = {"package_manager": "binary", "package": sys.executable, "version": "1", "args": args}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_refresh_skips_what_the_state_file_says_is_done(tmp_path: Path) -> None:
    _binary_entry(tmp_path, "one", [FAKE, "paged"])
    _binary_entry(tmp_path, "two", [FAKE, "paged"])
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"done": ["one"]}), encoding="utf-8")
    code, out, _ = run("registry", "refresh", "--registry", str(tmp_path), "--state", str(state))
    assert code == 0, out
    assert "== two:" in out and "== one:" not in out
    assert not state.exists()  # everything done: the next run starts afresh


def test_a_refresh_that_fails_leaves_the_entry_and_records_why(tmp_path: Path) -> None:
    path = _binary_entry(tmp_path, "dies", [FAKE, "crash"])
    before = path.read_text(encoding="utf-8")
    code, out, err = run("registry", "refresh", "--registry", str(tmp_path), "--timeout", "20")
    assert code == 1
    assert "== dies: scan failed" in out and "1 of 1 entries could not be refreshed" in err
    assert path.read_text(encoding="utf-8") == before
    [failure] = read_failures(tmp_path / FAILURES_FILE)
    assert (failure.ecosystem, failure.package, failure.version) == ("binary", sys.executable, "1")


def test_add_refuses_arguments_for_several_packages(tmp_path: Path) -> None:
    code, _, err = run("registry", "add", "--registry", str(tmp_path), "npm:a", "npm:b", "--", "stdio")
    assert code == 2 and "arguments after `--` are for one package" in err
