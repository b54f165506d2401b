"""The counter-store contract run against the in-process backends (Redis runs it in tests/e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intercept.state.base import CounterStore
from intercept.state.memory import MemoryStore
from intercept.state.sqlite import SqliteStore
from tests.unit.intercept.state.contract import CounterStoreContract


class TestMemoryStore(CounterStoreContract):
    async def open_store(self, tmp_path: Path, request: pytest.FixtureRequest) -> CounterStore:
        return MemoryStore()


class TestSqliteStore(CounterStoreContract):
    async def open_store(self, tmp_path: Path, request: pytest.FixtureRequest) -> CounterStore:
        return SqliteStore.in_directory(tmp_path / "state")

    async def open_peer(
        self, store: CounterStore, tmp_path: Path, request: pytest.FixtureRequest
    ) -> CounterStore | None:
        return SqliteStore.in_directory(tmp_path / "state")
