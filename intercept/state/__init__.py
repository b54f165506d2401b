"""Counter stores behind one protocol (`base.CounterStore`), and the `--state` factory.

`open_store(spec, ...)` turns the `--state` option into a store:

* `memory`: `MemoryStore`, ephemeral;
* `sqlite` (the default): `SqliteStore` in `state_dir` (default `~/.intercept/state`);
* another backend registers itself in `STATE_OPENERS` with a predicate on the spec and an
  opener, e.g. `redis://...` -> RedisStore. An opener may raise ValueError (bad spec; shown to
  the user as a usage error) or StateError (backend unreachable; the proxy refuses to start).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from intercept.state.base import CounterStore, StateError

DEFAULT_STATE_DIR = Path("~/.intercept/state")


@dataclass(frozen=True, slots=True)
class StateOptions:
    """Everything `--state*` options say; backends read the fields they need."""

    spec: str = "sqlite"
    state_dir: Path | None = None
    prefix: str | None = None


StateOpener = Callable[[StateOptions], CounterStore]
STATE_OPENERS: list[tuple[Callable[[str], bool], StateOpener]] = []
"""Extra backends: (accepts spec?, open). Checked in order after `memory` and `sqlite`."""


def _open_memory(options: StateOptions) -> CounterStore:
    from intercept.state.memory import MemoryStore

    return MemoryStore()


def _open_sqlite(options: StateOptions) -> CounterStore:
    from intercept.state.sqlite import SqliteStore

    directory = (options.state_dir or DEFAULT_STATE_DIR).expanduser()
    return SqliteStore.in_directory(directory)


def _is_redis_spec(spec: str) -> bool:
    return spec.split("://", 1)[0] in {"redis", "rediss", "unix"} and "://" in spec


def _open_redis(options: StateOptions) -> CounterStore:
    from intercept.state.redis import DEFAULT_PREFIX, RedisStore

    return RedisStore.from_dsn(options.spec, options.prefix or DEFAULT_PREFIX)


STATE_OPENERS.append((_is_redis_spec, _open_redis))


def open_store(options: StateOptions) -> CounterStore:
    """Open the store `options.spec` names; ValueError for an unknown spec, StateError if it fails."""
    if options.spec == "memory":
        return _open_memory(options)
    if options.spec == "sqlite":
        return _open_sqlite(options)
    for accepts, opener in STATE_OPENERS:
        if accepts(options.spec):
            return opener(options)
    # Echo only the scheme: a mistyped URL may carry a password.
    shown = options.spec.split(":", 1)[0] if ":" in options.spec else options.spec
    raise ValueError(f"unknown --state {shown!r}: use memory, sqlite, or a supported URL")


__all__ = ["STATE_OPENERS", "CounterStore", "StateError", "StateOptions", "open_store"]
