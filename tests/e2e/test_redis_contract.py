"""The shared counter-store contract, run against RedisStore on a real redis-server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from intercept.state.base import CounterStore
from intercept.state.redis import RedisStore
from tests.unit.intercept.state.contract import CounterStoreContract

pytestmark = pytest.mark.e2e


class TestRedisStore(CounterStoreContract):
    async def open_store(self, tmp_path: Path, request: pytest.FixtureRequest) -> CounterStore:
        prefix = f"c{uuid.uuid4().hex[:12]}"
        request.node.stash[_PREFIX] = prefix
        return RedisStore.from_dsn(request.getfixturevalue("redis_server"), prefix)

    async def open_peer(
        self, store: CounterStore, tmp_path: Path, request: pytest.FixtureRequest
    ) -> CounterStore | None:
        return RedisStore.from_dsn(request.getfixturevalue("redis_server"), request.node.stash[_PREFIX])


_PREFIX = pytest.StashKey[str]()
