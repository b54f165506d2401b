"""The sandbox's command line: namespaces, identity, what is bound where, and the limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercept.sandbox import Limits, Sandbox, command_paths, limit_args, runtime_paths, sandbox_argv


def _pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def _before_command(argv: list[str]) -> list[str]:
    return argv[: argv.index("--")]


def test_root_sets_up_with_bwrap_then_drops_to_nobody_without_privileges(tmp_path: Path) -> None:
    argv = sandbox_argv(Sandbox(tmp_path / "home"), ["server", "--flag"], as_root=True)
    options = _before_command(argv)
    assert argv[0] == "bwrap"
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"):
        assert flag in options
    after = argv[argv.index("--") + 1 :]
    assert after[0] == "setpriv"
    assert {"--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs", "--inh-caps=-all"} <= set(
        after[: after.index("--")]
    )
    assert "--unshare-user" not in options  # setpriv needs the real root to become the real uid 65534
    assert argv[-2:] == ["server", "--flag"]


def test_non_root_maps_itself_to_nobody_in_a_user_namespace(tmp_path: Path) -> None:
    argv = sandbox_argv(Sandbox(tmp_path / "home"), ["server"], as_root=False)
    options = _before_command(argv)
    assert {"--unshare-user", "--uid=65534", "--gid=65534", "--unshare-net"} <= set(options)
    assert "setpriv" not in argv


def test_only_the_workdir_is_writable_and_is_home_and_cwd(tmp_path: Path) -> None:
    home = tmp_path / "home"
    prefix = tmp_path / "prefix"
    argv = sandbox_argv(Sandbox(home, (prefix,)), ["server"], as_root=True)
    options = _before_command(argv)
    assert _pairs(options, "--bind") == [(str(home), str(home))]
    assert (str(prefix), str(prefix)) in _pairs(options, "--ro-bind")
    assert ("/usr", "/usr") in _pairs(options, "--ro-bind")
    assert ("HOME", str(home)) in _pairs(options, "--setenv")
    assert options[options.index("--chdir") + 1] == str(home)
    assert ("1777", "--tmpfs", "/tmp") in zip(options, options[1:], options[2:], strict=False)
    assert ("/", "/") not in _pairs(options, "--ro-bind") + _pairs(options, "--bind")


def test_bind_parents_are_made_traversable_before_the_bind(tmp_path: Path) -> None:
    prefix = tmp_path / "a" / "prefix"
    argv = sandbox_argv(Sandbox(tmp_path / "home", (prefix,)), ["server"], as_root=True)
    made = [argv[i + 1] for i, a in enumerate(argv) if a == "--dir"]
    assert str(tmp_path / "a") in made
    for directory in made:
        at = argv.index(directory)
        assert argv[at - 3 : at - 1] == ["--perms", "0755"]
        assert at < argv.index(str(prefix))


def test_nested_and_system_paths_are_not_bound_twice(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    argv = sandbox_argv(
        Sandbox(tmp_path / "home", (outer / "inner", outer, Path("/usr/lib"))), ["server"], as_root=True
    )
    sources = [s for s, _ in _pairs(argv, "--ro-bind")]
    assert sources.count(str(outer)) == 1
    assert str(outer / "inner") not in sources
    assert "/usr/lib" not in sources


def test_limits_wrap_the_command_in_prlimit_and_timeout() -> None:
    limits = Limits(
        cpu_seconds=7, address_space=1024, processes=9, file_size=5, open_files=11, wall_seconds=13
    )
    args = limit_args(limits)
    assert args[0] == "prlimit"
    assert {"--cpu=7", "--as=1024", "--nproc=9", "--fsize=5", "--nofile=11"} <= set(args)
    assert args[args.index("timeout") :] == ["timeout", "--kill-after=5", "13"]


def test_an_empty_command_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no command"):
        sandbox_argv(Sandbox(tmp_path), [], as_root=True)


def test_a_venv_interpreter_needs_the_venv_and_its_base_installation(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "bin").mkdir(parents=True)
    real = base / "bin" / "python3"
    real.write_text("")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = x\n")
    (venv / "bin" / "python").symlink_to(real)
    assert runtime_paths(venv / "bin" / "python") == [venv, base]


def test_command_paths_include_the_folders_of_path_arguments(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text("")
    config = tmp_path / "conf"
    config.mkdir()
    paths = command_paths(["/usr/bin/env", str(script), f"--config={config}", "relative.txt"])
    assert tmp_path in paths and config in paths
    assert Path("relative.txt") not in paths
