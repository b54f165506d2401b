"""Policy hot reload: swap in a new engine when a completed write leaves a valid policy.

A reload starts only from a completed write, seen by inotify on the directories along the
policy path:

* the policy file closed after it was opened for writing (IN_CLOSE_WRITE);
* an entry along the path, the file or any symlink leading to it, replaced by a rename
  (IN_MOVED_TO) or created as a symlink (IN_CREATE): editors' rename-over, `mv`, `ln -sfn`,
  a Kubernetes ConfigMap's `..data` swap.

A modification alone never reloads: a file rewritten in place is read only once its writer has
closed it, so a writer that pauses (`curl ... > policy.yaml`) cannot get a prefix applied that
happens to be a valid, looser policy. The reload waits SETTLE_SECONDS after the last such event,
and a write to the file that starts meanwhile puts it off until that write completes too.

The path is resolved one link at a time, as the kernel does, and the watches follow: after any
change along it the chain is resolved again, so a swapped link moves them to the new target.
Every reload and every rejected one (with each error and its location) is logged and reported
to the caller (the audit log); a rejected edit leaves the policy in force.

inotify is used directly (through asyncinotify, a small typed ctypes binding on the event loop)
because watchfiles' backend reports neither a close after writing nor what kind of entry was
created, so it cannot tell a completed write from a pause in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from intercept.engine import Engine
from intercept.policy import load_policy
from intercept.util.errors import InputError

with warnings.catch_warnings():
    # asyncinotify warns on import outside Linux and raises when libc lacks inotify; either
    # way PolicyWatch.open says so, at start-up.
    warnings.simplefilter("ignore")
    try:
        from asyncinotify import Event, Inotify, Mask, Watch
    except Exception as exc:
        _IMPORT_ERROR: str | None = f"{type(exc).__name__}: {exc}"
    else:
        _IMPORT_ERROR = None

log = logging.getLogger("intercept.reload")

SETTLE_SECONDS = 0.3
MAX_LINKS = 40  # the kernel's own limit on symlinks followed in one lookup

Report = Callable[[bool, str], None]


class ReloadUnavailable(Exception):
    """The policy cannot be watched; the message says why and how to run without reload."""


@dataclass(frozen=True)
class Chain:
    """Where a policy path leads: `(directory, name)` of every symlink followed, in order, then
    of the file (or of the first entry that is missing). Directories are real paths."""

    entries: tuple[tuple[Path, str], ...]
    leads_to_file: bool

    def names_in(self, directory: Path) -> set[str]:
        return {name for where, name in self.entries if where == directory}


def resolve_chain(path: Path) -> Chain:
    """Follow `path` one component and one link at a time, recording every entry it depends on."""
    entries: list[tuple[Path, str]] = []
    pending = list(reversed((path if path.is_absolute() else Path.cwd() / path).parts[1:]))
    current = Path("/")
    links = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent
            continue
        candidate = current / name
        try:
            info = os.lstat(candidate)
        except OSError:
            return Chain((*entries, (current, name)), False)
        if stat.S_ISLNK(info.st_mode):
            entries.append((current, name))
            links += 1
            try:
                target = os.readlink(candidate)
            except OSError:
                return Chain(tuple(entries), False)
            if links > MAX_LINKS:
                return Chain(tuple(entries), False)
            parts = Path(target).parts
            if os.path.isabs(target):
                current, parts = Path("/"), parts[1:]
            pending.extend(reversed(parts))
        elif not pending:
            return Chain((*entries, (current, name)), stat.S_ISREG(info.st_mode))
        elif stat.S_ISDIR(info.st_mode):
            current = candidate
        else:
            return Chain((*entries, (current, name)), False)
    return Chain(tuple(entries), False)


def reload_policy(path: Path) -> Engine | InputError:
    """Load and compile the policy at `path`; the InputError (not raised) if it is invalid."""
    try:
        return Engine(load_policy(path))
    except InputError as exc:
        return exc


class PolicyWatch:
    """inotify watches on every directory the policy path goes through, kept in step with it."""

    def __init__(self, path: Path, inotify: Inotify) -> None:
        self.path = path
        self._inotify = inotify
        self._events = (
            Mask.CLOSE_WRITE | Mask.MODIFY | Mask.MOVED_TO | Mask.MOVED_FROM | Mask.CREATE | Mask.DELETE
        ) | (Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.ONLYDIR)
        self._apply: Callable[[Engine], None] = lambda _engine: None
        self._report: Report = lambda _ok, _detail: None
        self._watches: dict[Path, Watch] = {}
        self.chain = Chain((), False)
        self._settle: asyncio.Task[None] | None = None
        self._settle_cause = ""

    @classmethod
    def open(cls, path: Path) -> PolicyWatch:
        """Start watching `path`. Raises ReloadUnavailable if inotify cannot be used."""
        if not sys.platform.startswith("linux") or _IMPORT_ERROR is not None:
            reason = _IMPORT_ERROR or f"inotify is Linux-only and this is {sys.platform}"
            raise ReloadUnavailable(_unavailable(reason))
        try:
            inotify = Inotify()
        except (OSError, AttributeError) as exc:
            raise ReloadUnavailable(_unavailable(f"inotify: {_strerror(exc)}")) from None
        watch = cls(path, inotify)
        try:
            watch.follow(strict=True)
        except OSError as exc:
            watch.close()
            raise ReloadUnavailable(_unavailable(f"{exc.filename}: {_strerror(exc)}")) from None
        return watch

    def close(self) -> None:
        if self._settle is not None:
            self._settle.cancel()
        self._inotify.close()

    def __enter__(self) -> PolicyWatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def follow(self, strict: bool = False) -> None:
        """Resolve the path again and move the watches to the directories it now goes through."""
        for _attempt in range(5):
            chain = resolve_chain(self.path)
            wanted = {directory for directory, _name in chain.entries}
            moved = False
            for directory in wanted - self._watches.keys():
                try:
                    self._watches[directory] = self._inotify.add_watch(directory, self._events)
                except OSError as exc:
                    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                        moved = True  # changed while being resolved: resolve again
                    elif strict:
                        raise
                    else:
                        log.error("cannot watch %s for policy changes: %s", directory, _strerror(exc))
            for directory in self._watches.keys() - wanted:
                with contextlib.suppress(OSError):
                    self._inotify.rm_watch(self._watches.pop(directory))
            if not moved:
                break
        if self.chain.leads_to_file and not chain.leads_to_file:
            log.warning("%s no longer leads to a policy file; the policy in force stays", self.path)
        self.chain = chain

    async def run(self, apply: Callable[[Engine], None], report: Report) -> None:
        """Handle events until cancelled."""
        self._apply, self._report = apply, report
        async for event in self._inotify:
            self.handle(event)

    def handle(self, event: Event) -> None:
        mask = event.mask
        if Mask.Q_OVERFLOW in mask:
            log.warning("the kernel dropped file events; reading the policy again")
            self.follow()
            self._schedule("file events were lost")
            return
        watch = event.watch
        if watch is None or self._watches.get(watch.path) is not watch:
            return  # a watch already let go of
        directory = watch.path
        if event.name is None:  # the directory itself went away
            if Mask.IGNORED in mask:
                del self._watches[directory]
            if mask & (Mask.IGNORED | Mask.DELETE_SELF | Mask.MOVE_SELF):
                self.follow()
            return
        name = str(event.name)
        if name not in self.chain.names_in(directory):
            return
        is_file = self.chain.entries[-1] == (directory, name)
        if Mask.MODIFY in mask:
            if is_file:
                self._put_off()
        elif Mask.CLOSE_WRITE in mask:
            if is_file:
                self._schedule(f"{name} was written")
        else:
            self.follow()
            if Mask.MOVED_TO in mask:
                self._schedule(f"{name} was replaced by a rename")
            elif Mask.CREATE in mask and (directory / name).is_symlink():
                self._schedule(f"{name} was created as a symlink")
            elif Mask.CREATE in mask:
                self._put_off()  # a new file: wait until its writer closes it

    def _put_off(self) -> None:
        """A write began: whatever was due waits for this write's own completion."""
        if self._settle is not None:
            log.debug("policy file is being written; reload waits for the write to complete")
            self._settle.cancel()
            self._settle = None

    def _schedule(self, cause: str) -> None:
        if self._settle is not None:
            self._settle.cancel()
        self._settle_cause = cause
        self._settle = asyncio.create_task(self._settle_then_reload())

    async def _settle_then_reload(self) -> None:
        await asyncio.sleep(SETTLE_SECONDS)
        self._settle = None
        # From here on nothing awaits: a reload is never cut off halfway.
        try:
            self._reload(self._settle_cause)
        except Exception as exc:  # a task's exception would otherwise go unseen
            log.error(
                "policy reload failed (%s: %s); the previous policy stays in force", type(exc).__name__, exc
            )

    def _reload(self, cause: str) -> None:
        outcome = reload_policy(self.path)
        if isinstance(outcome, InputError):
            log.error(
                "policy reload rejected (%s); the previous policy stays in force:\n%s",
                cause,
                outcome.render(),
            )
            self._report(False, outcome.render())
            return
        self._apply(outcome)
        summary = outcome.policy.summary().render()
        log.warning("policy reloaded from %s (%s): %s", self.path, cause, summary)
        self._report(True, summary)


def _strerror(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _unavailable(reason: str) -> str:
    return (
        f"cannot watch the policy for hot reload ({reason}); "
        "run with --no-watch to enforce it without reloading on changes"
    )


async def watch_policy(
    watch: PolicyWatch,
    apply: Callable[[Engine], None],
    report: Report,
    stop: asyncio.Event,
) -> None:
    """Until `stop` is set, reload on each completed write: `apply` valid policies, `report` outcomes."""
    with watch:
        events = asyncio.create_task(watch.run(apply, report))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({events, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if events.done() and not events.cancelled() and (failure := events.exception()) is not None:
                message = f"policy hot reload stopped ({_strerror(failure)}); restart to reload"
                log.error("%s; the policy in force stays", message)
                report(False, message)
        finally:
            for task in (events, stopping):
                task.cancel()
            await asyncio.gather(events, stopping, return_exceptions=True)
