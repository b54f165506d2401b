"""Bring a package from npm or PyPI into the registry: install it with no install-time code, run its
server in the sandbox (`intercept.sandbox`), list its tools and build the registry document.

Installing is the only step with network: `npm install --ignore-scripts` or
`pip install --only-binary :all:` (wheels only, so no build backend runs) into a throwaway prefix.
Nothing from the package runs outside the sandbox: its metadata is read as files, never imported."""

from __future__ import annotations

import dataclasses
import email.parser
import functools
import glob
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from configparser import ConfigParser
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from generator.catalog.entry import build_server_data, dummy_env
from generator.catalog.failures import FailureReason, classify_failure, env_names_asked_for
from intercept.sandbox import (
    Limits,
    Sandbox,
    check_available,
    command_paths,
    make_workdir,
    runtime_paths,
    sandbox_argv,
)
from intercept.scan import ScanError, ScanResult, StdioTarget, scan

Ecosystem = Literal["npm", "pypi"]

INSTALL_TIMEOUT = 300.0
OUTPUT_TAIL_LINES = 20
NPM_NAME = re.compile(r"^(?:@[a-z0-9][\w.-]*/)?[a-z0-9][\w.-]*$", re.IGNORECASE)
PYPI_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")


class IntakeError(Exception):
    """A package that could not be brought in, with the reason class `registry/_failures.json` keeps."""

    def __init__(self, reason: FailureReason, message: str, tail: str = "") -> None:
        self.reason = reason
        self.message = message
        self.tail = tail
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class PackageSpec:
    ecosystem: Ecosystem
    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> PackageSpec:
        """`npm:NAME[@VERSION]` or `pypi:NAME[@VERSION|==VERSION]`; ValueError says what is wrong."""
        ecosystem, sep, rest = text.partition(":")
        if not sep or ecosystem not in ("npm", "pypi"):
            raise ValueError("a package is written npm:NAME[@VERSION] or pypi:NAME[@VERSION]")
        if ecosystem == "npm":
            at = rest.rfind("@")
            name, version = (rest[:at], rest[at + 1 :]) if at > 0 else (rest, None)
            pattern = NPM_NAME
        else:
            name, _, version_text = rest.replace("==", "@").partition("@")
            version = version_text or None
            pattern = PYPI_NAME
        if not pattern.match(name):
            raise ValueError(f"{ecosystem} package name is not valid")
        if version is not None and not VERSION.match(version):
            raise ValueError("the version must be one exact version, like 1.2.3")
        return cls("npm" if ecosystem == "npm" else "pypi", name, version)

    def __str__(self) -> str:
        return f"{self.ecosystem}:{self.name}" + (f"@{self.version}" if self.version else "")


@dataclass(frozen=True, slots=True)
class Installed:
    """A package installed into a throwaway prefix: what runs it there and what its metadata says."""

    spec: PackageSpec
    version: str
    command: list[str]
    read_only: tuple[Path, ...]
    repository: str | None = None
    homepage: str | None = None
    description: str | None = None

    def user_command(self, args: list[str]) -> list[str]:
        """The command a user types for this exact version (what the registry records)."""
        if self.spec.ecosystem == "npm":
            return ["npx", "-y", f"{self.spec.name}@{self.version}", *args]
        return ["uvx", f"{self.spec.name}=={self.version}", *args]


@dataclass(frozen=True, slots=True)
class Intake:
    """A finished sandboxed scan of one package."""

    installed: Installed
    result: ScanResult
    env_names: list[str] = field(default_factory=list)
    pins: tuple[str, ...] = ()
    """Requirements added to the install because the package's own ones no longer start it."""


@contextmanager
def workspace() -> Iterator[Path]:
    """A throwaway directory for one package's prefix and its server's home, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="intercept-intake-"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(argv: list[str], timeout: float, what: str) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise IntakeError("install-failed", f"{what} did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise IntakeError("install-failed", f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-OUTPUT_TAIL_LINES:])
        raise IntakeError("install-failed", f"{what} failed (exit {done.returncode})", tail)
    return done.stdout


def install(
    spec: PackageSpec, prefix: Path, timeout: float = INSTALL_TIMEOUT, pins: tuple[str, ...] = ()
) -> Installed:
    prefix.mkdir(mode=0o755, exist_ok=True)
    prefix.chmod(0o755)
    if spec.ecosystem == "npm":
        return _install_npm(spec, prefix, timeout)
    return _install_pypi(spec, prefix, timeout, pins)


def _install_npm(spec: PackageSpec, prefix: Path, timeout: float) -> Installed:
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise IntakeError("install-failed", "npm packages need node and npm on PATH")
    wanted = f"{spec.name}@{spec.version or 'latest'}"
    argv = ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--no-save", "--prefix"]
    _run([*argv, str(prefix), wanted], timeout, "npm install")
    package_dir = prefix / "node_modules" / spec.name
    meta = _read_json(package_dir / "package.json")
    bins = meta.get("bin")
    if isinstance(bins, str):
        bins = {spec.name.rsplit("/", 1)[-1]: bins}
    if not isinstance(bins, dict) or not bins:
        raise IntakeError("not-an-mcp-server", "the package has no executable (no `bin` in package.json)")
    name = _pick_executable(spec.name, [str(k) for k in bins])
    node = shutil.which("node") or "node"
    target = (package_dir / str(bins[name])).resolve()
    if not target.is_relative_to(package_dir.resolve()) or not target.is_file():
        raise IntakeError("not-an-mcp-server", "the package's `bin` does not name a file inside it")
    # Run the file the `bin` names rather than its link in .bin, whose name npm derives (and a scoped
    # bin name like `@acme/mcp` gets none): with node, unless it says it is something else.
    with target.open("rb") as handle:
        first = handle.readline(200)
    command = [str(target)] if first.startswith(b"#!") and b"node" not in first else [node, str(target)]
    return Installed(
        spec,
        str(meta.get("version") or spec.version or "unknown"),
        command,
        (prefix, *runtime_paths(node)),
        repository=_npm_repository(meta.get("repository")),
        homepage=_http_url(meta.get("homepage")),
        description=meta.get("description") if isinstance(meta.get("description"), str) else None,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise IntakeError("install-failed", f"the installed package has no readable {path.name}") from None
    return data if isinstance(data, dict) else {}


def _pick_executable(package: str, names: list[str]) -> str:
    """The executable named like the package, else the one mentioning mcp, else the first."""
    bare = package.rsplit("/", 1)[-1].lower()
    canon = re.sub(r"[-_.]+", "-", bare)
    for name in names:
        if re.sub(r"[-_.]+", "-", name.lower()) == canon:
            return name
    return next((n for n in names if "mcp" in n.lower()), names[0])


def _npm_repository(value: Any) -> str | None:
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str):
        return None
    url = url.strip()
    if re.match(r"^(?:github:)?[\w.-]+/[\w.-]+$", url):
        return "https://github.com/" + url.removeprefix("github:").removesuffix(".git")
    url = re.sub(r"^git\+", "", url)
    url = re.sub(r"^git://", "https://", url)
    url = re.sub(r"^(?:ssh://)?git@([^:/]+)[:/]", r"https://\1/", url)
    return _http_url(url.removesuffix(".git"))


def _http_url(value: Any) -> str | None:
    if isinstance(value, str) and re.match(r"^https?://[^\s/]+\S*$", value.strip()):
        return value.strip()
    return None


@functools.cache
def _pythons() -> list[str]:
    """Interpreters to build the package's venv with: ours first, then newer ones a package may need
    (each resolved by asking it, since a version manager's shim may not run)."""
    found = [sys.executable]
    for name in ("python3.13", "python3.12"):
        candidates = [
            shutil.which(name),
            *sorted(glob.glob(str(Path.home() / f".pyenv/versions/3*/bin/{name}"))),
        ]
        for candidate in filter(None, candidates):
            try:
                real = subprocess.run(
                    [candidate, "-c", "import sys; print(sys.executable)"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=True,
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                continue
            if real:
                found.append(real)
                break
    return found


def _install_pypi(spec: PackageSpec, prefix: Path, timeout: float, pins: tuple[str, ...]) -> Installed:
    wanted = f"{spec.name}=={spec.version}" if spec.version else spec.name
    error: IntakeError | None = None
    for python in _pythons():
        venv = prefix / "venv"
        shutil.rmtree(venv, ignore_errors=True)
        _run([python, "-m", "venv", "--without-pip", str(venv)], 120, "creating a venv")
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
        flags = ["--only-binary", ":all:", "--no-compile", "--disable-pip-version-check", "--quiet"]
        try:
            _run([*pip, *flags, wanted, *pins], timeout, "pip install (wheels only)")
        except IntakeError as exc:
            error = exc
            if "Requires-Python" in exc.tail or "requires a different Python" in exc.tail:
                continue
            break
        return _pypi_installed(spec, venv, python)
    assert error is not None
    if "no matching distribution" in error.tail.lower():
        error.message += "; no wheel fits (source builds are not run outside the sandbox)"
    raise error


def _pypi_installed(spec: PackageSpec, venv: Path, python: str) -> Installed:
    canon = re.sub(r"[-_.]+", "-", spec.name).lower()
    dist_info = next(
        (
            d
            for d in venv.glob("lib/python3*/site-packages/*.dist-info")
            if re.sub(r"[-_.]+", "-", d.name.removesuffix(".dist-info").rsplit("-", 1)[0]).lower() == canon
        ),
        None,
    )
    if dist_info is None:
        raise IntakeError("install-failed", "pip installed no distribution of that name")
    meta = email.parser.Parser().parsestr(
        (dist_info / "METADATA").read_text(encoding="utf-8", errors="replace")
    )
    scripts: list[str] = []
    entry_points = dist_info / "entry_points.txt"
    if entry_points.is_file():
        parser = ConfigParser(interpolation=None, delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(entry_points.read_text(encoding="utf-8", errors="replace"))
        if parser.has_section("console_scripts"):
            scripts = list(parser["console_scripts"])
    if not scripts:
        raise IntakeError("not-an-mcp-server", "the package has no console script to start a server with")
    urls = {
        label.strip().lower(): url.strip()
        for label, _, url in (u.partition(",") for u in meta.get_all("Project-URL") or [])
    }
    repository = next(
        (_http_url(urls[k]) for k in ("repository", "source", "source code", "github", "code") if k in urls),
        None,
    )
    homepage = _http_url(meta.get("Home-page")) or next(
        (_http_url(urls[k]) for k in ("homepage", "home", "documentation") if k in urls), None
    )
    return Installed(
        spec,
        str(meta.get("Version") or spec.version),
        [str(venv / "bin" / _pick_executable(spec.name, scripts))],
        (venv.parent, *runtime_paths(venv / "bin" / "python"), *runtime_paths(python)),
        repository=repository,
        homepage=homepage,
        description=meta.get("Summary") or None,
    )


def scan_installed(
    installed: Installed,
    home_parent: Path,
    args: list[str],
    env: dict[str, str],
    timeout: float,
    limits: Limits | None = None,
) -> ScanResult:
    """Run the installed server in the sandbox and list its tools (ScanError if it cannot)."""
    check_available()
    home = make_workdir(home_parent)
    sandbox = Sandbox(home, installed.read_only, limits or Limits(wall_seconds=int(timeout) + 10))
    result = scan(StdioTarget(sandbox_argv(sandbox, [*installed.command, *args]), env), timeout)
    return dataclasses.replace(result, command=installed.user_command(args))


def scan_in_sandbox(
    command: list[str], env: dict[str, str], timeout: float, limits: Limits | None = None
) -> ScanResult:
    """`intercept scan --sandbox`: `npx -y PKG[@V] …` and `uvx PKG[==V] …` are installed the intake
    way (no install scripts) and run from the prefix, since the sandbox has no network to fetch them;
    any other command runs as it is, seeing its program's runtime and the paths its arguments name."""
    parsed = spec_from_command(command)
    with workspace() as base:
        if parsed is not None:
            spec, args = parsed
            try:
                installed = install(spec, base / "prefix")
            except IntakeError as exc:
                raise ScanError(exc.message, exc.tail) from None
            return scan_installed(installed, base / "run", args, env, timeout, limits)
        check_available()
        program = shutil.which(command[0]) if command else None
        argv = [program or command[0], *command[1:]] if command else []
        home = make_workdir(base)
        sandbox = Sandbox(home, tuple(command_paths(argv)), limits or Limits(wall_seconds=int(timeout) + 10))
        result = scan(StdioTarget(sandbox_argv(sandbox, argv), env), timeout)
        return dataclasses.replace(result, command=list(command))


def spec_from_command(command: list[str]) -> tuple[PackageSpec, list[str]] | None:
    """(package, its arguments) for `npx -y PKG[@V] …` or `uvx PKG[==V] …`; None for other commands."""
    try:
        if len(command) >= 3 and Path(command[0]).name == "npx" and command[1] in ("-y", "--yes"):
            return PackageSpec.parse(f"npm:{command[2]}"), command[3:]
        if len(command) >= 2 and Path(command[0]).name == "uvx" and not command[1].startswith("-"):
            return PackageSpec.parse(f"pypi:{command[1]}"), command[2:]
    except ValueError:
        return None
    return None


def intake(
    spec: PackageSpec,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    env_names: list[str] | None = None,
    timeout: float = 120.0,
) -> Intake:
    """Install, then scan in the sandbox. A server that dies naming environment variables it needs
    is tried once more with harmless dummy values for them. IntakeError says why it failed."""
    names = list(env_names or [])
    run_args = list(args or [])
    pins: tuple[str, ...] = ()
    with workspace() as base:
        installed = install(spec, base / "prefix")
        for attempt in range(4):
            run_env = dummy_env(names) | dict(env or {})
            try:
                result = scan_installed(installed, base / f"run{attempt}", run_args, run_env, timeout)
            except ScanError as exc:
                last = attempt == 3
                asked = [n for n in env_names_asked_for(exc.stderr_tail) if n not in names]
                if not last and asked:
                    names += asked
                    continue
                suggested = _suggested_command(exc.stderr_tail)
                if not last and not run_args and suggested:
                    run_args = [suggested]
                    continue
                if not last and not pins and spec.ecosystem == "pypi" and MCP1_GONE.search(exc.stderr_tail):
                    pins = MCP1_PINS
                    installed = install(spec, base / f"prefix{attempt}", pins=pins)
                    continue
                reason = classify_failure(exc.message, exc.stderr_tail)
                raise IntakeError(reason, exc.message, exc.stderr_tail) from None
            return Intake(installed, result, sorted(names), pins)
    raise AssertionError("unreachable")


MCP1_GONE = re.compile(r"No module named 'mcp\.server\.fastmcp'|cannot import name '\w+' from 'mcp[.']")
MCP1_PINS = ("mcp<2",)
"""A server written for the MCP SDK 1.x that does not pin it breaks under 2.x (FastMCP was renamed):
scanned again with 1.x, and the entry's notes say so."""


def _suggested_command(stderr_tail: str) -> str | None:
    """The subcommand a usage message offers for serving MCP over stdio (`{stdio,sse}`, `Commands:
    stdio`, `Run 'tool mcp' to start the MCP server`), or None."""
    if not re.search(r"usage|command|choose|choice|transport|\brun\b", stderr_tail, re.IGNORECASE):
        return None
    for word in ("stdio", "mcp"):
        if re.search(rf"(?<![\w./-]){word}(?![\w-])", stderr_tail):
            return word
    return None


def registry_document(done: Intake, slug: str, existing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The registry entry for a sandboxed scan: the scan, plus repository and homepage from the
    package metadata when the entry has none yet."""
    data = build_server_data(
        done.result, slug, existing, env_names=done.env_names, notes=_notes(existing, done.pins)
    )
    added = {"repository": done.installed.repository, "homepage": done.installed.homepage}
    if not existing:
        added["description"] = (done.installed.description or "").strip()[:300] or None
    ordered: dict[str, Any] = {}
    for key, value in data.items():
        if key == "run":
            for extra in ("description", "repository", "homepage"):
                if extra not in data and added.get(extra):
                    ordered[extra] = added[extra]
        ordered[key] = value
    return ordered


SANDBOX_NOTE = "Installed with install scripts off; scanned in the sandbox (no network, uid 65534)."


def _notes(existing: dict[str, Any] | None, pins: tuple[str, ...]) -> str | None:
    """A new entry says how it was scanned; an existing one keeps its notes."""
    if existing:
        return None
    if pins:
        pinned = ", ".join(pins)
        return f"{SANDBOX_NOTE} Installed with {pinned}: the package does not pin it, fails with the newest."
    return SANDBOX_NOTE


def slug_for(package: str, taken: set[str]) -> str:
    """A registry slug from a package name: scope and `mcp`/`server` affixes dropped, made unique."""
    scope, _, bare = package.lower().rpartition("/")
    scope = re.sub(r"[^a-z0-9]+", "-", scope).strip("-")
    if not scope and re.match(r"^awslabs[.-]", bare):  # AWS Labs' PyPI packages carry their scope in the name
        scope, bare = "awslabs", bare[len("awslabs.") :]
    core = re.sub(r"[^a-z0-9]+", "-", bare)
    for affix in ("mcp-server-", "server-", "mcp-"):
        core = core.removeprefix(affix)
    for affix in ("-mcp-server", "-server-mcp", "-mcp", "-server"):
        core = core.removesuffix(affix)
    core = core.strip("-")
    full = f"{scope}-{bare}" if scope else bare
    candidates = []
    if core in ("", "mcp", "server", "mcp-server") and scope:  # `@acme/mcp` is Acme's server
        candidates.append(scope)
    elif core:
        candidates.append(core)
        if scope and scope != "modelcontextprotocol":
            candidates.append(f"{scope}-{core}")
    candidates.append(re.sub(r"[^a-z0-9]+", "-", full).strip("-") or "server")
    for candidate in candidates:
        candidate = candidate[:64].strip("-")
        if candidate and candidate not in taken:
            return candidate
    base = candidates[-1][:60].strip("-")
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"
