"""The sandbox a scan runs a stranger's MCP server in: bubblewrap with no network, as uid 65534.

A scanned package was reviewed by no one here, so its server runs with:

- its own network namespace (only a loopback of its own; no route out, not even to the host's 127.0.0.1),
  and its own PID, IPC, UTS and cgroup namespaces;
- uid/gid 65534 (`nobody`), with no capabilities and `no_new_privs`. Run by root, `bwrap` sets the
  sandbox up with root's rights and `setpriv` then drops to the real uid 65534 (so root-owned files
  such as /etc/shadow stay unreadable); run by anyone else, `bwrap` maps that user to 65534 in a user
  namespace;
- an empty root file system onto which only the system directories (/usr, /etc and the merged-/usr
  symlinks), the paths the caller names (the throwaway install prefix, a Python or Node runtime) are
  bound read-only; one writable directory is its HOME and working directory, and /tmp is a fresh tmpfs;
- rlimits set by `prlimit` before the server starts (CPU seconds, address space, process count, file
  size, open files) and a wall-clock limit by `timeout`, which kills it.

`sandbox_argv` only builds the command line; the scan client starts it like any stdio server.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = 65534
"""uid and gid the server runs as (Debian's `nobody`/`nogroup`)."""

GIB = 1024**3


class SandboxUnavailable(RuntimeError):
    """bwrap (or, as root, setpriv) is missing; the message says how to install it."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for one sandboxed server and everything it starts."""

    cpu_seconds: int = 300
    data_size: int = 4 * GIB
    """RLIMIT_DATA, per process: the memory it can actually write to (heap and private mappings)."""
    address_space: int = 256 * GIB
    """RLIMIT_AS, per process, a backstop only: Node reserves tens of GiB of address space it never
    touches (V8's pointer cage, 10 GiB per WebAssembly memory), so RLIMIT_DATA does the real bounding."""
    processes: int = 256
    """RLIMIT_NPROC: a fork bomb stops here instead of taking the machine down."""
    file_size: int = 256 * 1024 * 1024
    open_files: int = 1024
    wall_seconds: int = 600


@dataclass(frozen=True, slots=True)
class Sandbox:
    """Where the server may read (`read_only`, bound at the same paths) and write (`workdir`)."""

    workdir: Path
    read_only: tuple[Path, ...] = ()
    limits: Limits = field(default_factory=Limits)


SYSTEM_DIRS = ("/usr", "/etc")
"""Bound read-only: programs, shared libraries, certificates, /etc/passwd for `nobody`."""

MERGED_USR_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


def runtime_paths(executable: str | Path) -> list[Path]:
    """The directories a program needs to run inside: for a Python venv's interpreter, the venv and
    the installation its symlink leads to; for anything else, the prefix of its resolved binary
    (`/usr/bin/node` needs nothing beyond /usr)."""
    path = Path(executable).absolute()
    paths: list[Path] = []
    if path.parent.name == "bin" and (path.parent.parent / "pyvenv.cfg").exists():
        paths.append(path.parent.parent)
    real = path.resolve()
    if real.parent.name == "bin":
        paths.append(real.parent.parent)
    else:
        paths.append(real.parent)
    return paths


def _covered(path: Path, by: list[Path]) -> bool:
    return any(path == other or other in path.parents for other in by)


def _binds(paths: tuple[Path, ...], writable: Path) -> list[str]:
    """--ro-bind pairs for the paths (dropping those under another one or under a system dir), then
    the writable bind; each after its missing parents, made 0755 (bwrap would make them 0700, which
    `nobody` cannot pass through)."""
    kept: list[Path] = [Path(d) for d in SYSTEM_DIRS]
    made: set[Path] = {Path("/"), Path("/tmp"), Path("/proc"), Path("/dev")}
    out: list[str] = []
    ordered = sorted({p.absolute() for p in paths}, key=lambda p: len(p.parts))
    for path, flag in [*((p, "--ro-bind") for p in ordered), (writable, "--bind")]:
        if flag == "--ro-bind" and _covered(path, kept):
            continue
        kept.append(path)
        for parent in reversed(path.parents):
            if parent not in made and not _covered(parent, kept[:-1]):
                out += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        made.add(path)
        out += [flag, str(path), str(path)]
    return out


def _system_binds() -> list[str]:
    out: list[str] = []
    for directory in SYSTEM_DIRS:
        if Path(directory).is_dir():
            out += ["--ro-bind", directory, directory]
    for link in MERGED_USR_LINKS:
        target = Path(link)
        if target.is_symlink():
            out += ["--symlink", os.readlink(target), link]
        elif target.is_dir():
            out += ["--ro-bind", link, link]
    return out


def limit_args(limits: Limits) -> list[str]:
    """`prlimit … -- timeout …`: the rlimits, then the wall-clock limit (SIGTERM, SIGKILL 5 s later)."""
    return [
        "prlimit",
        f"--cpu={limits.cpu_seconds}",
        f"--data={limits.data_size}",
        f"--as={limits.address_space}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_size}",
        f"--nofile={limits.open_files}",
        "--",
        "timeout",
        "--kill-after=5",
        str(limits.wall_seconds),
    ]


NAMESPACES = ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try")

DROP_TO_NOBODY = [
    "setpriv",
    f"--reuid={NOBODY}",
    f"--regid={NOBODY}",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--no-new-privs",
    "--",
]


def sandbox_argv(sandbox: Sandbox, command: list[str], *, as_root: bool | None = None) -> list[str]:
    """The argv that runs `command` inside the sandbox."""
    if not command:
        raise ValueError("no command to sandbox")
    root = os.geteuid() == 0 if as_root is None else as_root
    workdir = sandbox.workdir.absolute()
    identity = [] if root else ["--unshare-user", f"--uid={NOBODY}", f"--gid={NOBODY}", "--cap-drop", "ALL"]
    return [
        "bwrap",
        *NAMESPACES,
        *identity,
        "--die-with-parent",
        "--new-session",
        *_system_binds(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
        *_binds(sandbox.read_only, workdir),
        "--chdir",
        str(workdir),
        "--setenv",
        "HOME",
        str(workdir),
        "--setenv",
        "TMPDIR",
        "/tmp",
        "--",
        *(DROP_TO_NOBODY if root else []),
        *limit_args(sandbox.limits),
        *command,
    ]


def check_available(*, as_root: bool | None = None) -> None:
    """SandboxUnavailable unless the programs `sandbox_argv` uses are installed."""
    root = os.geteuid() == 0 if as_root is None else as_root
    needed = ["bwrap", "prlimit", "timeout"] + (["setpriv"] if root else [])
    # Inside, they are looked up on the sandbox's PATH, which has /usr/bin.
    missing = [program for program in needed if shutil.which(program) is None]
    if missing:
        raise SandboxUnavailable(
            f"the scan sandbox needs {', '.join(missing)} on PATH "
            "(fix: apt-get install bubblewrap util-linux coreutils)"
        )


def make_workdir(parent: Path) -> Path:
    """A fresh writable directory for the server under `parent`, owned by uid 65534 when we are root
    (so `nobody` can write it) and by us otherwise (bwrap maps us to 65534 inside)."""
    parent.mkdir(parents=True, exist_ok=True)
    workdir = parent / "home"
    workdir.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(workdir, NOBODY, NOBODY)
    # The parent must be traversable by nobody to reach the bind source.
    parent.chmod(0o755)
    return workdir


def command_paths(command: list[str]) -> list[Path]:
    """What a plain command needs to see: its program's runtime (see `runtime_paths`) and the folder
    of every argument that names an existing file or folder (a script, a config)."""
    if not command:
        return []
    program = shutil.which(command[0]) or command[0]
    paths = runtime_paths(program) if Path(program).exists() else []
    for arg in command[1:]:
        candidate = Path(arg.split("=", 1)[-1])
        if candidate.is_absolute() and candidate.exists():
            paths.append(candidate if candidate.is_dir() else candidate.parent)
    return paths
