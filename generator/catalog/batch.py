"""Run one job per item on a few threads, with a progress bar, resumable: the keys of finished items
go to a state file as they finish, and a later run with the same state file skips them."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from intercept.util.fsutil import atomic_write_text

T = TypeVar("T")
R = TypeVar("R")


class StateFile:
    """The keys already done, rewritten atomically after each one."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.done: set[str] = set()
        if path is not None and path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("done"), list):
                self.done = {str(k) for k in data["done"]}

    def mark(self, key: str) -> None:
        with self._lock:
            self.done.add(key)
            if self.path is not None:
                atomic_write_text(self.path, json.dumps({"done": sorted(self.done)}, indent=1) + "\n")

    def finish(self) -> None:
        """Everything is done: the next run starts afresh."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class BatchResult(Generic[T, R]):
    finished: list[tuple[T, R]]
    skipped: list[T]
    interrupted: bool


def run_batch(
    items: Iterable[T],
    key: Callable[[T], str],
    job: Callable[[T], R],
    *,
    jobs: int,
    state: StateFile,
    label: str,
    on_done: Callable[[T, R], None] | None = None,
    console: Console | None = None,
) -> BatchResult[T, R]:
    """Run `job` on every item whose key is not in `state`, `jobs` at a time. `on_done` runs on the
    calling thread as each finishes (print, write), then the key is marked done. Ctrl-C stops
    starting new items; the ones running finish (each bounded by its own time limit)."""
    todo: list[T] = []
    skipped: list[T] = []
    for item in items:
        (skipped if key(item) in state.done else todo).append(item)
    finished: list[tuple[T, R]] = []
    interrupted = False
    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console or Console(stderr=True),
        transient=False,
    )
    pool = ThreadPoolExecutor(max_workers=jobs)
    with progress:
        task = progress.add_task("", total=len(todo))
        pending: dict[Future[R], T] = {}
        queue = list(reversed(todo))
        try:
            while queue or pending:
                while queue and len(pending) < jobs:
                    item = queue.pop()
                    pending[pool.submit(job, item)] = item
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    item = pending.pop(future)
                    result = future.result()
                    if on_done is not None:
                        on_done(item, result)
                    state.mark(key(item))
                    finished.append((item, result))
                    progress.update(task, advance=1, description=key(item))
        except KeyboardInterrupt:
            interrupted = True
            queue.clear()
        finally:
            # Interrupted: do not wait for the running items (Ctrl-C reached their processes too).
            pool.shutdown(wait=not interrupted, cancel_futures=True)
    if not interrupted:
        state.finish()
    return BatchResult(finished, skipped, interrupted)
