"""`intercept build` and `intercept serve`: the tool reference site."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from generator.site.build import BuildOptions

EXIT_INVALID = 1
EXIT_USAGE = 2
PROGRESS_MIN_TOOLS = 2000


def _options(
    registry: Path | None,
    out: Path,
    base_url: str,
    search: bool,
    workers: int,
    cache_dir: Path | None,
    full: bool,
    search_shard_pages: int | None = None,
    install_command: str | None = None,
) -> BuildOptions:
    from generator.resources import registry_dir, templates_dir
    from generator.site.build import BuildOptions
    from generator.site.search import DEFAULT_SHARD_PAGES
    from generator.site.usage import DEFAULT_INSTALL_COMMAND

    return BuildOptions(
        registry=registry or registry_dir(),
        out=out,
        base_url=base_url,
        search=search,
        workers=max(1, workers),
        cache_dir=cache_dir,
        templates=templates_dir(),
        incremental=not full,
        search_shard_pages=search_shard_pages or DEFAULT_SHARD_PAGES,
        install_command=install_command or DEFAULT_INSTALL_COMMAND,
    )


def _run_build(options: BuildOptions) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from generator.catalog.load import RegistryError
    from generator.site.build import BuildSettingsError, build_site
    from generator.site.search import SearchIndexError

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(phase: str, advance: int, total: int) -> None:
        if total and total < PROGRESS_MIN_TOOLS:
            return
        if phase not in tasks:
            tasks[phase] = progress.add_task(phase, total=total or None)
        progress.advance(tasks[phase], advance)

    try:
        with progress, _exit_cleanly_on_termination():
            result = build_site(options, on_progress)
    except RegistryError as exc:
        click.echo(
            f"registry is invalid ({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}); "
            f"the previous site in {options.out} is untouched:",
            err=True,
        )
        click.echo(exc.render(), err=True)
        sys.exit(EXIT_INVALID)
    except BuildSettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_USAGE)
    except SearchIndexError as exc:
        click.echo(f"{exc}; the previous site is untouched", err=True)
        sys.exit(EXIT_INVALID)
    except OSError as exc:
        click.echo(f"cannot write the site: {exc.strerror or exc} ({exc.filename or options.out})", err=True)
        sys.exit(EXIT_INVALID)
    click.echo(result.summary())


@contextlib.contextmanager
def _exit_cleanly_on_termination() -> Iterator[None]:
    """While a build runs, SIGTERM and SIGHUP stop it and remove its staging folder.

    Without this they end the process at once, leaving a half-written `.<out>.building-<pid>`
    folder behind (the next build sweeps those up too, for SIGKILL). The handler does not raise
    into the build: an exception arriving inside multiprocessing's pool machinery can be lost,
    and killed workers are replaced by the pool. It tells the workers to skip what is left,
    lets the pages being written finish, removes the staging folders and exits; the workers
    exit once the build has. Forked workers inherit the handler and fall back to the default
    action.
    """
    from generator.site.output import discard_all_staging
    from generator.site.workers import stop_rendering

    builder = os.getpid()

    def stop(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != builder:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stop_rendering()
        discard_all_staging()
        click.echo(f"build stopped by {signal.Signals(signum).name}", err=True)
        sys.stderr.flush()
        os._exit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (an embedding host keeps its own)
        return
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_registry_opt = click.option(
    "--registry",
    type=click.Path(path_type=Path, file_okay=False),
    help="Registry folder of <slug>.yaml files (default: the shipped registry).",
)
_search_opt = click.option(
    "--search/--no-search", default=True, show_default=True, help="Build the Pagefind search index."
)
_workers_opt = click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Processes that render pages in parallel.",
)
_cache_opt = click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Parse cache and build manifest (default: .<out>.cache beside the output).",
)


@click.command()
@_registry_opt
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("site"),
    show_default=True,
    help="Output folder; replaced whole on a full build.",
)
@click.option(
    "--base-url",
    default=None,
    help="Public URL of the site, for canonical links, the sitemap and JSON-LD (default: "
    "https://example.com, with a warning).",
)
@_search_opt
@_workers_opt
@_cache_opt
@click.option("--full", is_flag=True, help="Ignore the previous build and render every page.")
@click.option(
    "--search-shard-pages",
    type=click.IntRange(1),
    help="Most pages one Pagefind run indexes; larger sites get several merged search bundles "
    "(default: 10000).",
)
@click.option(
    "--install-command",
    help="How pages tell readers to install Intercept (default: pip install <path-to-intercept-checkout>, "
    "as the package is not on PyPI).",
)
def build(
    registry: Path | None,
    out: Path,
    base_url: str | None,
    search: bool,
    workers: int,
    cache_dir: Path | None,
    full: bool,
    search_shard_pages: int | None,
    install_command: str | None,
) -> None:
    """Render the tool reference site from the registry."""
    from generator.site.build import DEFAULT_BASE_URL

    if base_url is None:
        click.echo(
            f"warning: --base-url is not set; canonical links, the sitemap, robots.txt and llms.txt "
            f"point at {DEFAULT_BASE_URL}",
            err=True,
        )
    _run_build(
        _options(
            registry,
            out,
            base_url or DEFAULT_BASE_URL,
            search,
            workers,
            cache_dir,
            full,
            search_shard_pages,
            install_command,
        )
    )


@click.command()
@_registry_opt
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port on 127.0.0.1."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("site"),
    show_default=True,
    help="Output folder.",
)
@_search_opt
@_workers_opt
@_cache_opt
def serve(
    registry: Path | None, port: int, out: Path, search: bool, workers: int, cache_dir: Path | None
) -> None:
    """Build the site, serve it on 127.0.0.1, and rebuild when registry or template files change."""
    from generator.catalog.load import RegistryError
    from generator.site.serve import serve as run_server

    options = _options(registry, out, f"http://127.0.0.1:{port}", search, workers, cache_dir, False)
    try:
        run_server(options, port, lambda line: click.echo(line, err=True))
    except RegistryError as exc:
        click.echo("registry is invalid:", err=True)
        click.echo(exc.render(), err=True)
        sys.exit(EXIT_INVALID)
    except OSError as exc:
        click.echo(f"cannot serve: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_INVALID)


COMMANDS = [build, serve]
