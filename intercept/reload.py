"""Policy hot reload: watch the policy file and swap in a new engine when an edit is valid.

An invalid edit is logged (every error, with its location) and recorded in the audit log;
the policy in force stays. Counters live in the store, keyed by rule identity, so a reload
keeps them. Editors that save by renaming a new file over the old one are handled by
watching the directory and filtering on the file's name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from intercept.engine import Engine
from intercept.policy import load_policy
from intercept.util.errors import InputError

log = logging.getLogger("intercept.reload")

DEBOUNCE_MS = 300


def reload_policy(path: Path) -> Engine | InputError:
    """Load and compile the policy at `path`; the InputError (not raised) if it is invalid."""
    try:
        return Engine(load_policy(path))
    except InputError as exc:
        return exc


async def watch_policy(
    path: Path,
    apply: Callable[[Engine], None],
    report: Callable[[bool, str], None],
    stop: asyncio.Event,
) -> None:
    """Until `stop` is set, reload on each change to `path`: `apply` valid policies, `report` outcomes."""
    target = path.resolve()

    def is_target(_change: watchfiles.Change, changed: str) -> bool:
        return Path(changed).name == target.name

    async for _changes in watchfiles.awatch(
        target.parent, watch_filter=is_target, stop_event=stop, debounce=DEBOUNCE_MS, recursive=False
    ):
        if not target.exists():
            continue  # mid-save (deleted before the new file lands); the next event brings it
        outcome = reload_policy(target)
        if isinstance(outcome, InputError):
            log.error("policy reload rejected; the previous policy stays in force:\n%s", outcome.render())
            report(False, outcome.render())
            continue
        apply(outcome)
        summary = outcome.policy.summary().render()
        log.warning("policy reloaded from %s: %s", path, summary)
        report(True, summary)
