"""`intercept validate`, `test` and `scaffold` in a real subprocess: output, exit codes, no tracebacks."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "scaffold" / "trigger-dev.yaml"
POLICIES = ROOT / "tests" / "data" / "policies"
SCRIPT = Path(sys.executable).parent / "intercept"


def intercept(
    *args: str | Path, cwd: Path | None = None, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercept", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=120,
        preexec_fn=preexec,
    )


def assert_no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout


# --- validate -------------------------------------------------------------------------------


def test_validate_valid_policy_prints_one_line_summary() -> None:
    done = intercept("validate", "-c", POLICIES / "stripe-guard.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"{POLICIES / 'stripe-guard.yaml'}: policy is valid: "
        '3 tools, plus "*" rules, 6 rules, 2 hidden, default deny\n'
    )
    assert done.stderr == ""


def test_validate_scaffolded_golden_policy() -> None:
    done = intercept("validate", "-c", GOLDEN)
    assert done.returncode == 0
    assert done.stdout.endswith("policy is valid: 55 tools, 71 rules, 0 hidden, default allow\n")


def test_validate_invalid_policy_lists_every_error(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "defualt: deny\ntools:\n  create_charge:\n    rules:\n"
        "      - rate_limt: 10/minute\n"
        "      - conditions: [{path: args.amount, op: lt, value: lots}]\n"
        "      - conditions: [{path: state.create_charge.spend, op: lt, value: 5}]\n",
        encoding="utf-8",
    )
    done = intercept("validate", "-c", policy)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == f"{policy}: policy is invalid (4 errors):"
    assert len(lines) == 5 and all(line.startswith("  - ") for line in lines[1:])
    body = "\n".join(lines)
    assert "(top level): unknown key 'defualt' (fix: did you mean 'default'?)" in body
    assert "tools.create_charge.rules[0]: unknown key 'rate_limt' (fix: did you mean 'rate_limit'?)" in body
    assert "tools.create_charge.rules[1].conditions[0]: op 'lt' needs a number" in body
    assert "tools.create_charge.rules[2].conditions[0].path: condition reads counter" in body
    assert_no_traceback(done)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"tools: [\n", "not valid YAML"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
        (b"a: &x 1\nb: *x\n", "aliases"),
        (b"a: 1\nb: \x00\x01", "line 2: not valid YAML: character U+0000 is not allowed"),
    ],
    ids=["syntax", "binary", "alias", "control"],
)
def test_validate_non_yaml_input_is_one_line_error(tmp_path: Path, content: bytes, message: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(content)
    done = intercept("validate", "-c", policy)
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"{policy}: ") and message in line
    assert_no_traceback(done)


def test_validate_non_mapping_names_the_top_level(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("just a string\n", encoding="utf-8")
    done = intercept("validate", "-c", policy)
    assert done.returncode == 1
    assert "(top level): a policy must be a mapping" in done.stderr


def test_validate_missing_file_is_one_line_error(tmp_path: Path) -> None:
    done = intercept("validate", "-c", tmp_path / "missing.yaml")
    assert done.returncode == 1
    assert done.stderr == f"{tmp_path / 'missing.yaml'}: cannot read file: No such file or directory\n"


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_validate_file_that_fails_to_read_is_one_line_error() -> None:
    # /proc/self/mem opens but every read at offset 0 fails with EIO, even for root.
    done = intercept("validate", "-c", "/proc/self/mem")
    assert done.returncode == 1
    assert done.stderr == "/proc/self/mem: cannot read file: Input/output error\n"
    assert_no_traceback(done)


def test_validate_unreadable_file_is_one_line_error() -> None:
    # Root reads files whatever their mode, so as root the command runs as the unprivileged
    # user `nobody`, on a file in a directory that user can enter.
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o755)
        policy = Path(folder) / "policy.yaml"
        policy.write_text("tools: {}\n", encoding="utf-8")
        policy.chmod(0)
        done = subprocess.run(
            [*as_nobody, sys.executable, "-m", "intercept", "validate", "-c", str(policy)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stderr == f"{policy}: cannot read file: Permission denied\n"
    assert_no_traceback(done)


@pytest.mark.parametrize(
    "args",
    [
        ["validate"],
        ["validate", "-c"],
        ["validate", "--nope"],
        ["no-such-command"],
        ["scaffold"],
        ["scaffold", "trigger-dev", "--default", "maybe"],
        ["scaffold", "trigger-dev", "-o", "same.yaml", "--tests", "same.yaml"],
        ["test", "cases.yaml"],
        ["test", "-c", "policy.yaml"],
    ],
    ids=[
        "no-config",
        "config-without-value",
        "unknown-option",
        "unknown-command",
        "no-server",
        "bad-default",
        "tests-and-output-the-same",
        "test-without-policy",
        "test-without-cases",
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    done = intercept(*args)
    assert done.returncode == 2
    assert "Usage:" in done.stderr or "Error:" in done.stderr
    assert_no_traceback(done)


def test_validate_directory_is_a_usage_error(tmp_path: Path) -> None:
    done = intercept("validate", "-c", tmp_path)
    assert done.returncode == 2 and "is a directory" in done.stderr
    assert_no_traceback(done)


# --- scaffold -------------------------------------------------------------------------------


def test_scaffold_prints_the_golden_policy_from_any_directory(tmp_path: Path) -> None:
    done = intercept("scaffold", "trigger-dev", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == GOLDEN.read_text(encoding="utf-8")
    assert list(tmp_path.iterdir()) == []


def test_scaffold_default_deny(tmp_path: Path) -> None:
    done = intercept("scaffold", "trigger-dev", "--default", "deny")
    assert done.returncode == 0
    assert "\ndefault: deny\n" in done.stdout
    as_allow = done.stdout.replace("\ndefault: deny\n", "\ndefault: allow\n")
    assert as_allow == GOLDEN.read_text(encoding="utf-8")


def test_scaffold_pin_adds_the_registry_hash_to_every_tool_and_nothing_else() -> None:
    from generator.catalog.load import load_registry
    from generator.resources import registry_dir
    from intercept.policy import load_policy_text

    done = intercept("scaffold", "trigger-dev", "--pin")
    assert done.returncode == 0, done.stderr
    server = load_registry(registry_dir()).by_slug("trigger-dev")
    assert server is not None
    policy = load_policy_text(done.stdout)
    assert policy.pins() == {t.name: t.definition_hash for t in server.tools}
    lines = done.stdout.splitlines(keepends=True)
    assert sum(line.startswith("    pin: ") for line in lines) == len(server.tools)
    unpinned = "".join(line for line in lines if not line.startswith(("    pin: ", "# Pins:", "#      ")))
    assert unpinned == GOLDEN.read_text(encoding="utf-8")


def test_scaffold_unknown_server_suggests_the_closest_slug() -> None:
    done = intercept("scaffold", "trigger-devv")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "unknown server 'trigger-devv'. Did you mean: trigger-dev" in done.stderr
    assert_no_traceback(done)


def test_scaffold_output_file(tmp_path: Path) -> None:
    out = tmp_path / "policy.yaml"
    done = intercept("scaffold", "trigger-dev", "-o", out)
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr == f"wrote {out} (55 tools)\n"
    assert out.read_bytes() == GOLDEN.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.yaml"]
    again = intercept("validate", "-c", out)
    assert again.returncode == 0


def _limit_file_size() -> None:
    # The child may write at most 4 KiB per file; the policy is larger, so the write fails
    # part-way, the way a full disk would.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_scaffold_output_never_leaves_a_half_written_file(tmp_path: Path) -> None:
    out = tmp_path / "policy.yaml"
    out.write_text("previous policy\n", encoding="utf-8")
    done = intercept("scaffold", "trigger-dev", "-o", out, preexec=_limit_file_size)
    assert done.returncode == 2
    assert done.stderr.startswith(f"cannot write {out}: File too large")
    assert out.read_text(encoding="utf-8") == "previous policy\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.yaml"]
    assert_no_traceback(done)


def test_scaffold_output_into_a_non_directory_writes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    done = intercept("scaffold", "trigger-dev", "-o", blocker / "policy.yaml")
    assert done.returncode == 2 and "cannot write" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert_no_traceback(done)


def test_scaffold_output_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    done = intercept("scaffold", "trigger-dev", "-o", tmp_path)
    assert done.returncode == 2 and "is a directory" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_scaffold_invalid_registry_exits_2_and_prints_nothing(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("slug: other\nname: X\n", encoding="utf-8")
    done = intercept("scaffold", "broken", "--registry", tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "registry is invalid" in done.stderr and "broken.yaml: slug:" in done.stderr
    assert_no_traceback(done)


def test_scaffold_tests_file_passes_against_the_scaffolded_policy(tmp_path: Path) -> None:
    done = intercept(
        "scaffold", "trigger-dev", "-o", "policy.yaml", "--tests", "policy.tests.yaml", cwd=tmp_path
    )
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert done.stderr == "wrote policy.tests.yaml (55 cases)\nwrote policy.yaml (55 tools)\n"
    tests = (tmp_path / "policy.tests.yaml").read_text(encoding="utf-8")
    assert "# Run them:  intercept test -c policy.yaml policy.tests.yaml\n" in tests
    ran = intercept("test", "-c", "policy.yaml", "policy.tests.yaml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.endswith("55 cases: 55 passed, 0 failed\n") and ran.stderr == ""
    assert ran.stdout.count("\nPASS  ") == 54


def test_scaffold_tests_with_the_policy_on_stdout(tmp_path: Path) -> None:
    done = intercept("scaffold", "trigger-dev", "--tests", tmp_path / "t.yaml")
    assert done.returncode == 0 and done.stdout == GOLDEN.read_text(encoding="utf-8")
    assert "intercept test -c trigger-dev.yaml t.yaml" in (tmp_path / "t.yaml").read_text(encoding="utf-8")


# --- test -----------------------------------------------------------------------------------

TEST_POLICY = """
tools:
  search:
    rules:
      - name: two a minute
        rate_limit: {max: 2, window: 60}
"""


def test_test_exits_1_on_a_failing_case_and_names_the_call(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(TEST_POLICY)
    (tmp_path / "cases.yaml").write_text(
        "cases:\n"
        "  - name: ok\n    calls: [{tool: search, repeat: 2, expect: allow}, {tool: search, expect: deny}]\n"
        "  - name: too many\n"
        "    calls: [{tool: search, arguments: {q: sk_SECRET}, repeat: 3, expect: allow}]\n"
    )
    done = intercept("test", "-c", "policy.yaml", "cases.yaml", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr == ""
    assert done.stdout == (
        "PASS  ok (3 calls)\n"
        "FAIL  too many\n"
        "      call 1 (search), repetition 3 of 3: expected allow, "
        "got deny by rule two a minute: rate limit of 2 calls per 60 s reached\n"
        "2 cases: 1 passed, 1 failed\n"
    )


def test_test_reports_every_error_of_both_files_and_runs_nothing(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("tools:\n  search:\n    rulez: []\n")
    (tmp_path / "cases.yaml").write_text("cases:\n  - name: a\n    calls: [{tool: search, expect: alow}]\n")
    done = intercept("test", "-c", "policy.yaml", "cases.yaml", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "policy.yaml: policy is invalid (1 error):\n"
        "  - tools.search: unknown key 'rulez' (fix: did you mean 'rules'?)\n"
        "cases.yaml: test cases file is invalid (1 error):\n"
        "  - cases[0].calls[0].expect: invalid value 'alow' "
        "(fix: use one of 'allow', 'deny' or 'require_approval')\n"
    )
    assert_no_traceback(done)


def test_test_missing_cases_file_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(TEST_POLICY)
    done = intercept("test", "-c", "policy.yaml", "nope.yaml", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "nope.yaml: cannot read file: No such file or directory\n"


# --- entry points ---------------------------------------------------------------------------


def test_console_script_and_module_agree() -> None:
    module = intercept("--version")
    assert module.returncode == 0 and module.stdout.startswith("intercept, version ")
    if SCRIPT.exists():
        script = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
        assert script.stdout == module.stdout


def test_help_lists_validate_test_and_scaffold() -> None:
    done = intercept("--help")
    assert done.returncode == 0
    assert "validate" in done.stdout and "scaffold" in done.stdout and "  test " in done.stdout


def test_go_form_is_routed_to_run() -> None:
    if " run " not in intercept("--help").stdout:
        pytest.skip("`intercept run` is not registered yet (another issue adds it)")
    done = intercept("-c", POLICIES / "recommended.yaml", "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: intercept run ")


def test_go_form_reports_an_invalid_policy_through_run(tmp_path: Path) -> None:
    if " run " not in intercept("--help").stdout:
        pytest.skip("`intercept run` is not registered yet (another issue adds it)")
    policy = tmp_path / "policy.yaml"
    policy.write_text("tools: {t: {rules: [{rate_limt: 1/minute}]}}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "intercept", "-c", str(policy), "--", sys.executable, "-c", "pass"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert "unknown key 'rate_limt'" in done.stderr
    assert done.stdout == ""
    assert_no_traceback(done)


def test_validate_warns_that_an_empty_policy_admits_everything(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("default: allow  # nothing else yet\n")
    result = subprocess.run(
        [sys.executable, "-m", "intercept", "validate", "-c", str(empty)], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "policy is valid" in result.stdout
    assert "admits every call" in result.stderr
    guarded = tmp_path / "guarded.yaml"
    guarded.write_text("default: deny\n")
    result = subprocess.run(
        [sys.executable, "-m", "intercept", "validate", "-c", str(guarded)], capture_output=True, text=True
    )
    assert result.returncode == 0 and "warning" not in result.stderr
