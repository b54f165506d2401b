"""`intercept registry check|list|refresh|add`."""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from intercept.commands.scan_cmds import EXIT_USAGE, _fail, _parse_env, dummy_env_option, env_option
from intercept.scan import terminal_safe
from intercept.util.fsutil import atomic_write_text

if TYPE_CHECKING:
    from generator.catalog.failures import Failure, FailureLog, FailureReason
    from generator.catalog.intake import Intake, PackageSpec
    from generator.catalog.models import Registry


@click.group()
def registry() -> None:
    """Add, re-scan, check and list the registry of MCP servers."""


_registry_option = click.option(
    "--registry",
    "registry_path",
    type=click.Path(path_type=Path, file_okay=False),
    help="Registry folder (default: the registry shipped with intercept).",
)
_jobs_option = click.option(
    "-j", "--jobs", type=click.IntRange(1, 16), default=2, show_default=True, help="Servers scanned at once."
)
_state_option = click.option(
    "--state",
    "state_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Resume file: what is done is written here as it finishes, and skipped when run again "
    "(deleted once everything is done).",
)
_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=120.0,
    show_default=True,
    help="Seconds each server has to start and list its tools (installing has its own limit).",
)


def _registry_dir(path: Path | None) -> Path:
    from generator.resources import registry_dir

    return path or registry_dir()


def _load(path: Path | None) -> Registry:
    from generator.catalog.load import RegistryError, load_registry

    try:
        return load_registry(_registry_dir(path))
    except RegistryError as exc:
        _fail(f"registry is invalid ({len(exc.problems)} problems):\n{exc.render()}")
        raise AssertionError("unreachable") from exc


def _failure_log(directory: Path) -> FailureLog:
    from generator.catalog.failures import FAILURES_FILE, FailureLog

    return FailureLog(directory / FAILURES_FILE)


@registry.command("check")
@_registry_option
@click.option(
    "--fix-hashes",
    is_flag=True,
    help="First write each tool's definition_hash from its stored definition (after a hand correction).",
)
def registry_check(registry_path: Path | None, fix_hashes: bool) -> None:
    """Validate every entry, its definition hashes and run values; report servers, tools and categories."""
    from generator.catalog.check import check_registry
    from generator.catalog.check import fix_hashes as write_hashes
    from generator.catalog.load import RegistryError, registry_files
    from generator.catalog.models import CATEGORY_ORDER

    if fix_hashes:
        for path in registry_files(_registry_dir(registry_path)):
            try:
                if changed := write_hashes(path):
                    click.echo(f"{path.name}: wrote {changed} definition hash{'es' if changed > 1 else ''}")
            except ValueError:
                break  # the load below reports every problem
    reg = _load(registry_path)
    if problems := check_registry(_registry_dir(registry_path), reg.servers):
        _fail(f"registry has {len(problems)} problems:\n{RegistryError(problems).render()}")
    counts = {c: 0 for c in CATEGORY_ORDER}
    reviewed = conflicts = 0
    for server in reg:
        for tool in server.tools:
            counts[tool.category] += 1
            reviewed += tool.reviewed
            conflicts += tool.hint_conflict is not None
    click.echo(
        f"registry is valid: {len(reg.servers)} servers, {reg.tool_count} tools "
        f"({reviewed} categories reviewed by hand, {reg.tool_count - reviewed} from the classifier; "
        f"{conflicts} differ from their server's readOnlyHint or destructiveHint)"
    )
    for category, count in counts.items():
        click.echo(f"  {category.value:<11} {count}")


@registry.command("list")
@_registry_option
def registry_list(registry_path: Path | None) -> None:
    """One line per server: slug, tool count, package and version."""
    reg = _load(registry_path)
    for server in reg:
        run = server.run
        click.echo(
            f"{server.slug:<32} {len(server.tools):>4} tools  {run.package_manager:<6} "
            f"{run.package}@{run.version}"
        )


@registry.command("refresh")
@click.argument("slugs", nargs=-1)
@_registry_option
@_timeout_option
@_jobs_option
@_state_option
def registry_refresh(
    slugs: tuple[str, ...], registry_path: Path | None, timeout: float, jobs: int, state_path: Path | None
) -> None:
    """Re-scan entries (all, or the SLUGS given) in the sandbox and rewrite them, printing each diff.

    npm and PyPI packages are installed afresh with no install scripts. An entry is only ever
    replaced whole; one that fails is left as it was and recorded in the registry's _failures.json.
    """
    from generator.catalog.batch import StateFile, run_batch
    from generator.catalog.failures import make_failure
    from generator.catalog.refresh import RefreshOutcome, refresh_entry

    directory = _registry_dir(registry_path)
    paths = [directory / f"{s}.yaml" for s in slugs] if slugs else sorted(directory.glob("*.yaml"))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        _fail(f"no registry entry {', '.join(p.stem for p in missing)} in {directory}", EXIT_USAGE)
    failures = _failure_log(directory)

    def done(path: Path, outcome: RefreshOutcome) -> None:
        click.echo(f"== {path.stem}: {outcome.headline}")
        if outcome.detail:
            click.echo(outcome.detail)
        package = _package_of(path)
        if package is not None and outcome.reason is not None:
            failures.record(make_failure(*package, outcome.reason, outcome.headline, outcome.detail))
        elif package is not None and outcome.ok:
            failures.clear(package[0], package[1])

    batch = run_batch(
        paths,
        lambda p: p.stem,
        lambda p: refresh_entry(p, timeout),
        jobs=jobs,
        state=StateFile(state_path),
        label="refresh",
        on_done=done,
    )
    failed = sum(not outcome.ok for _, outcome in batch.finished)
    if batch.interrupted:
        _fail(f"interrupted after {len(batch.finished)} entries; run the same command to resume", 130)
    if failed:
        _fail(f"{failed} of {len(batch.finished)} entries could not be refreshed")


def _package_of(path: Path) -> tuple[str, str, str] | None:
    from generator.catalog.load import load_server_file

    server, _ = load_server_file(path)
    if server is None:
        return None
    return server.run.package_manager, server.run.package, server.run.version


class _ArgsAfterDashes(click.Command):
    """Keeps what follows `--` as the server's arguments instead of more package names."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            ctx.meta["server_args"] = args[at + 1 :]
            args = args[:at]
        return super().parse_args(ctx, args)


@dataclass(frozen=True, slots=True)
class _Request:
    spec: PackageSpec
    args: list[str]


@dataclass(frozen=True, slots=True)
class _Scanned:
    """What one package's job produced: a finished scan, or why there is none."""

    seconds: float
    done: Intake | None = None
    failure: Failure | None = None
    skipped: str | None = None


@registry.command("add", cls=_ArgsAfterDashes)
@click.argument("packages", nargs=-1)
@click.option(
    "--from",
    "from_file",
    type=click.File("r"),
    help="Read packages from this file: one `npm:NAME[@VERSION]` or `pypi:NAME[@VERSION]` a line, "
    "optionally followed by the server's arguments; `#` starts a comment.",
)
@_registry_option
@_timeout_option
@_jobs_option
@_state_option
@env_option
@dummy_env_option
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append one JSON line per package (outcome, reason, seconds) to this file.",
)
@click.pass_context
def registry_add(
    ctx: click.Context,
    packages: tuple[str, ...],
    from_file: Any,
    registry_path: Path | None,
    timeout: float,
    jobs: int,
    state_path: Path | None,
    env: tuple[str, ...],
    dummy_env_names: tuple[str, ...],
    log_path: Path | None,
) -> None:
    """Install packages, scan each in the sandbox and write a registry entry for it.

    PACKAGES are `npm:NAME[@VERSION]` or `pypi:NAME[@VERSION]`; the server's own arguments follow
    `--` (one package only). Installing uses the network with install scripts off; the server runs
    only inside the sandbox. A server that dies naming the environment variables it needs is tried
    once more with dummy values for them. Every package that cannot be scanned is recorded, with
    the reason, in the registry's _failures.json. Packages already in the registry are skipped
    (use `registry refresh`).
    """
    from generator.catalog.batch import StateFile, run_batch
    from generator.catalog.intake import PackageSpec

    server_args: list[str] = list(ctx.meta.get("server_args", []))
    requests: list[_Request] = []
    lines = [(p, server_args) for p in packages]
    if from_file is not None:
        for number, raw in enumerate(from_file, 1):
            words = shlex.split(raw, comments=True)
            if words:
                lines.append((words[0], words[1:]))
            del number
    if not lines:
        _fail("give one or more packages, e.g. `npm:@scope/name@1.2.3` or `pypi:name`", EXIT_USAGE)
    if server_args and len(lines) > 1:
        _fail("arguments after `--` are for one package; use --from FILE for several", EXIT_USAGE)
    for text, args in lines:
        try:
            requests.append(_Request(PackageSpec.parse(text), args))
        except ValueError as exc:
            _fail(f"{terminal_safe(text)}: {exc}", EXIT_USAGE)
    directory = _registry_dir(registry_path)
    if not directory.is_dir():
        _fail(f"registry folder {directory} does not exist", EXIT_USAGE)
    env_values = _parse_env(env, ())
    failures = _failure_log(directory)
    taken = _taken(directory)
    outcomes = {"written": 0, "failed": 0}

    def job(request: _Request) -> _Scanned:
        return _scan_one(request, taken, env_values, list(dummy_env_names), timeout)

    def done(request: _Request, scanned: _Scanned) -> None:
        line, reason = _write_one(request, scanned, directory, taken, failures)
        click.echo(line)
        if reason:
            outcomes["failed"] += 1
        elif scanned.skipped is None:
            outcomes["written"] += 1
        if log_path is not None:
            row = {"package": str(request.spec), "reason": reason, "seconds": round(scanned.seconds, 1)}
            if scanned.skipped:
                row["skipped"] = scanned.skipped
            with log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")

    batch = run_batch(
        requests,
        lambda r: str(r.spec),
        job,
        jobs=jobs,
        state=StateFile(state_path),
        label="add",
        on_done=done,
    )
    if batch.interrupted:
        _fail(f"interrupted after {len(batch.finished)} packages; run the same command to resume", 130)
    if outcomes["failed"]:
        _fail(
            f"{outcomes['failed']} of {len(batch.finished)} packages could not be added (see {failures.path})"
        )


def _taken(directory: Path) -> dict[str, str]:
    """Slug of every entry by `ecosystem:package`, and every slug by itself (read as plain YAML)."""
    from generator.catalog.load import REGISTRY_FILE_MAX_BYTES
    from intercept.util.safeyaml import YamlInputError, read_yaml_file

    taken: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        taken[path.stem] = path.stem
        try:
            data = read_yaml_file(path, REGISTRY_FILE_MAX_BYTES)
        except YamlInputError:
            continue
        run = data.get("run") if isinstance(data, dict) else None
        if isinstance(run, dict):
            taken[_package_key(str(run.get("package_manager")), str(run.get("package")))] = path.stem
    return taken


def _package_key(ecosystem: str, package: str) -> str:
    """PyPI names compare case-, `-`/`_`/`.`-insensitively (`awslabs.x` is `awslabs-x`)."""
    if ecosystem == "pypi":
        package = re.sub(r"[-_.]+", "-", package).lower()
    return f"{ecosystem}:{package}"


def _scan_one(
    request: _Request, taken: dict[str, str], env: dict[str, str], env_names: list[str], timeout: float
) -> _Scanned:
    from generator.catalog.failures import make_failure
    from generator.catalog.intake import IntakeError, intake

    spec = request.spec
    existing = taken.get(_package_key(spec.ecosystem, spec.name))
    if existing is not None:
        return _Scanned(0.0, skipped=f"already in the registry as {existing}")
    started = time.monotonic()
    try:
        done = intake(spec, request.args, env, env_names, timeout)
        if not done.result.tools:
            raise IntakeError("not-an-mcp-server", "the server listed no tools")
    except IntakeError as exc:
        failure = make_failure(spec.ecosystem, spec.name, spec.version, exc.reason, exc.message, exc.tail)
        return _Scanned(time.monotonic() - started, failure=failure)
    except Exception as exc:  # one package's surprise must not end a batch of hundreds
        message = f"intake stopped on {type(exc).__name__}"
        failure = make_failure(spec.ecosystem, spec.name, spec.version, "crashed", message, str(exc))
        return _Scanned(time.monotonic() - started, failure=failure)
    return _Scanned(time.monotonic() - started, done=done)


def _write_one(
    request: _Request, scanned: _Scanned, directory: Path, taken: dict[str, str], failures: FailureLog
) -> tuple[str, FailureReason | None]:
    """On the main thread, one at a time: pick the slug, write the entry or record the failure."""
    from generator.catalog.entry import dump_yaml
    from generator.catalog.failures import make_failure
    from generator.catalog.intake import registry_document, slug_for
    from generator.catalog.load import REGISTRY_FILE_MAX_BYTES, validate_server_data

    spec = request.spec
    label = terminal_safe(str(spec))
    if scanned.skipped is not None:
        return f"== {label}: {scanned.skipped}; skipped", None
    if scanned.failure is not None:
        failures.record(scanned.failure)
        detail = terminal_safe(scanned.failure.error[0] if scanned.failure.error else "")
        return f"== {label}: failed ({scanned.failure.reason}): {detail}", scanned.failure.reason
    assert scanned.done is not None
    version = scanned.done.installed.version
    slug = slug_for(spec.name, set(taken))
    data = registry_document(scanned.done, slug)
    _, problems = validate_server_data(data)
    text = dump_yaml(data)
    if problems or len(text.encode("utf-8")) > REGISTRY_FILE_MAX_BYTES:
        why = "; ".join(p.render(f"{slug}.yaml") for p in problems) or "the entry is over the size limit"
        failures.record(make_failure(spec.ecosystem, spec.name, version, "crashed", why, ""))
        return f"== {label}: scanned, but the result is not a valid registry entry", "crashed"
    atomic_write_text(directory / f"{slug}.yaml", text)
    taken[slug] = slug
    taken[_package_key(spec.ecosystem, spec.name)] = slug
    failures.clear(spec.ecosystem, spec.name)
    tools = len(data["tools"])
    return f"== {label}: wrote {slug}.yaml ({tools} tools, {version}, {scanned.seconds:.0f}s)", None


COMMANDS = [registry]
