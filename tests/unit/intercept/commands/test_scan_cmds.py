"""`intercept scan`, `intercept classify` and `intercept registry` through the CLI, with a scripted server."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from intercept.cli import main

FAKE = str(Path(__file__).parent.parent / "fake_mcp_server.py")
ROOT = Path(__file__).resolve().parents[4]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_scan_prints_an_entry_when_no_file_is_given() -> None:
    code, out, _ = run("scan", "--", sys.executable, FAKE, "paged")
    assert code == 0
    data = yaml.safe_load(out)
    assert data["slug"] == "fake-server"
    assert [t["name"] for t in data["tools"]] == ["alpha", "beta", "gamma", "delete_everything"]
    assert data["provenance"]["server_version"] == "9.9.9"


def test_scan_writes_a_file_named_by_its_slug_and_records_env_names_only(tmp_path: Path) -> None:
    out = tmp_path / "fake.yaml"
    code, _, err = run(
        "scan",
        "-o",
        str(out),
        "--dummy-env",
        "FAKE_SCAN_VALUE",
        "--env",
        "OTHER=secret-value",
        "--",
        sys.executable,
        FAKE,
        "env",
    )
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["slug"] == "fake"
    assert data["provenance"]["env_names"] == ["FAKE_SCAN_VALUE", "OTHER"]
    assert "secret-value" not in text
    assert data["tools"][0]["description"] == "intercept-scan-dummy"


def test_update_prints_the_diff_and_keeps_curation(tmp_path: Path) -> None:
    path = tmp_path / "fake.yaml"
    assert run("scan", "-o", str(path), "--", sys.executable, FAKE, "paged")[0] == 0
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["tools"][0]["description"] = "An older description."
    data["tools"][3].update(category="write", category_reason="the fake only pretends")
    data["tools"].append({"name": "retired", "description": "Gone now."})
    del data["tools"][1]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    code, out, _ = run("scan", "--update", str(path), "--", sys.executable, FAKE, "paged")
    assert code == 0
    assert "+ added    beta" in out
    assert "- removed  retired" in out
    assert "~ changed  alpha: description" in out
    kept = yaml.safe_load(path.read_text(encoding="utf-8"))
    delete = next(t for t in kept["tools"] if t["name"] == "delete_everything")
    assert delete["category"] == "write" and delete["category_reason"] == "the fake only pretends"


def test_a_failed_scan_exits_non_zero_shows_stderr_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "fake.yaml"
    code, _, err = run("scan", "-o", str(out), "--", sys.executable, FAKE, "crash")
    assert code == 1
    assert "scan failed" in err and "fatal: FAKE_TOKEN is not set" in err
    assert not out.exists()


def test_timeout_option_applies() -> None:
    code, _, err = run("scan", "--timeout", "1", "--", sys.executable, FAKE, "hang")
    assert code == 1 and "--timeout" in err


def test_usage_errors_exit_2() -> None:
    assert run("scan")[0] == 2
    assert run("scan", "-o", "a.yaml", "--update", __file__, "--", "x")[0] == 2
    assert run("scan", "--upstream", "http://127.0.0.1:9/mcp", "--", "x")[0] == 2


def test_classify_prints_category_risk_and_evidence() -> None:
    code, out, _ = run(
        "classify",
        "--name",
        "create_refund",
        "--description",
        "Refunds a payment.",
        "--annotations",
        '{"destructiveHint": false}',
    )
    assert code == 0
    assert out.splitlines()[0] == "create_refund: financial (risk critical)"
    assert "money" in out


def test_classify_jsonl_answers_one_line_per_tool(tmp_path: Path) -> None:
    src = tmp_path / "tools.jsonl"
    src.write_text(
        json.dumps({"name": "list_items"})
        + "\n\n"
        + json.dumps({"name": "run", "inputSchema": {"properties": {"command": {}}}})
        + "\n",
        encoding="utf-8",
    )
    code, out, _ = run("classify", "--jsonl", str(src))
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["name"], r["category"], r["risk"]) for r in rows] == [
        ("list_items", "read", "low"),
        ("run", "execute", "critical"),  # free-form command argument: one level above execute
    ]
    assert rows[1]["evidence"]


def test_classify_rejects_bad_input_without_a_traceback(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text('{"name": "ok"}\nnot json\n', encoding="utf-8")
    code, out, err = run("classify", "--jsonl", str(src))
    assert code == 2 and "line 2: not JSON" in err and out == ""
    code, _, err = run("classify", "--name", "x", "--schema", "[1]")
    assert code == 2 and "--schema: expected a JSON object" in err
    assert "Traceback" not in err


def test_registry_check_validates_the_real_registry_and_counts_categories() -> None:
    code, out, err = run("registry", "check", "--registry", str(ROOT / "registry"))
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith("registry is valid: ")
    servers = int(first.split(": ")[1].split()[0])
    assert servers >= 40
    for category in ("read", "write", "execute", "destructive", "financial"):
        assert any(line.split() and line.split()[0] == category for line in out.splitlines()[1:])


def test_registry_check_reports_a_broken_entry(tmp_path: Path) -> None:
    shutil.copy(ROOT / "registry" / "time.yaml", tmp_path / "time.yaml")
    (tmp_path / "broken.yaml").write_text("slug: broken\nname: B\n", encoding="utf-8")
    code, _, err = run("registry", "check", "--registry", str(tmp_path))
    assert code == 1
    assert "broken.yaml" in err and "run" in err


def test_registry_check_finds_a_missing_hash_and_fix_hashes_writes_it(tmp_path: Path) -> None:
    text = (ROOT / "registry" / "time.yaml").read_text(encoding="utf-8")
    first_hash = next(line for line in text.splitlines() if "definition_hash:" in line)
    (tmp_path / "time.yaml").write_text(text.replace(first_hash + "\n", "", 1), encoding="utf-8")
    code, _, err = run("registry", "check", "--registry", str(tmp_path))
    assert code == 1
    assert "time.yaml: tools[0] (get_current_time).definition_hash: missing" in err
    code, out, err = run("registry", "check", "--fix-hashes", "--registry", str(tmp_path))
    assert code == 0, err
    assert "time.yaml: wrote 1 definition hash" in out and "registry is valid" in out
    assert (tmp_path / "time.yaml").read_text(encoding="utf-8") == text


def test_registry_list_names_each_server() -> None:
    code, out, _ = run("registry", "list", "--registry", str(ROOT / "registry"))
    assert code == 0
    assert any(line.startswith("trigger-dev ") and "trigger.dev@4.8.3" in line for line in out.splitlines())


def test_registry_refresh_rescans_an_entry_from_its_provenance(tmp_path: Path) -> None:
    path = tmp_path / "fake.yaml"
    assert run("scan", "-o", str(path), "--", sys.executable, FAKE, "paged")[0] == 0
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["run"] = {
        "package_manager": "binary",
        "package": sys.executable,
        "version": "9.9.9",
        "args": [FAKE, "paged"],
    }
    data["tools"][0]["summary"] = "Curated."
    data["tools"].pop()
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    code, out, _ = run("registry", "refresh", "--registry", str(tmp_path), "fake")
    assert code == 0
    assert "== fake: 4 tools, changed:" in out and "+ added    delete_everything" in out
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["tools"][0]["summary"] == "Curated."


def test_registry_refresh_of_an_unknown_slug_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("registry", "refresh", "--registry", str(tmp_path), "nope")
    assert code == 2 and "no registry entry nope" in err
