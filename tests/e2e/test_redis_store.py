"""The Redis counter store against a real redis-server: atomicity, windows, rollback, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from intercept.state.base import CounterCheck, Refusal, Reservation, StateError
from intercept.state.redis import RedisStore, redact_dsn

pytestmark = pytest.mark.e2e

T0 = 1_764_115_200.0  # 2025-11-26 00:00:00 UTC, the start of a calendar day


@pytest.fixture
async def store(redis_server: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    s = RedisStore.from_dsn(redis_server, redis_prefix)
    yield s
    await s.close()


def limit(key: str, max_calls: int, window: int = 60, kind: str = "sliding") -> CounterCheck:
    return CounterCheck(key=key, kind=kind, window_seconds=window, increment=1, op="lte", limit=max_calls)  # type: ignore[arg-type]


async def test_sliding_window_admits_max_then_refuses_until_oldest_leaves(store: RedisStore) -> None:
    check = limit("echo", 3, window=60)
    for i in range(3):
        assert isinstance(await store.reserve([check], T0 + i), Reservation)
    refused = await store.reserve([check], T0 + 10)
    assert refused == Refusal(index=0, projected=4.0)
    assert await store.value("echo", "sliding", 60, T0 + 10) == 3
    # The first entry (T0) leaves the window at T0 + 60.
    assert isinstance(await store.reserve([check], T0 + 60), Reservation)
    assert isinstance(await store.reserve([check], T0 + 60.5), Refusal)
    assert await store.value("echo", "sliding", 60, T0 + 60.5) == 3


async def test_calendar_window_resets_at_the_next_bucket(store: RedisStore) -> None:
    check = limit("daily", 2, window=86400, kind="calendar")
    assert isinstance(await store.reserve([check], T0 + 10), Reservation)
    assert isinstance(await store.reserve([check], T0 + 86399), Reservation)
    assert isinstance(await store.reserve([check], T0 + 86399.5), Refusal)
    assert isinstance(await store.reserve([check], T0 + 86400), Reservation)
    assert await store.value("daily", "calendar", 86400, T0 + 86400) == 1
    assert await store.value("daily", "calendar", 86400, T0 + 5) == 2


async def test_refusal_moves_no_counter(store: RedisStore) -> None:
    spend = CounterCheck("spend", "calendar", 86400, increment=700, op="lte", limit=1000)
    calls = limit("calls", 1)
    assert isinstance(await store.reserve([calls, spend], T0), Reservation)
    refused = await store.reserve([limit("other", 5), spend], T0 + 1)
    assert refused == Refusal(index=1, projected=1400.0)
    assert await store.value("other", "sliding", 60, T0 + 1) == 0
    assert await store.value("spend", "calendar", 86400, T0 + 1) == 700


async def test_rollback_gives_quota_back_and_is_idempotent(store: RedisStore) -> None:
    check = limit("tool", 1)
    spend = CounterCheck("spend", "calendar", 3600, increment=2.5)
    first = await store.reserve([check, spend], T0)
    assert isinstance(first, Reservation)
    assert isinstance(await store.reserve([check], T0 + 1), Refusal)
    await store.rollback(first)
    await store.rollback(first)
    assert await store.value("tool", "sliding", 60, T0 + 1) == 0
    assert await store.value("spend", "calendar", 3600, T0 + 1) == 0
    second = await store.reserve([check, spend], T0 + 2)
    assert isinstance(second, Reservation)
    await store.commit(second)
    await store.rollback(second)
    assert await store.value("tool", "sliding", 60, T0 + 3) == 1
    assert await store.value("spend", "calendar", 3600, T0 + 3) == 2.5


async def test_rollback_of_an_entry_already_out_of_its_window(store: RedisStore) -> None:
    check = limit("slow", 2, window=10)
    old = await store.reserve([check], T0)
    assert isinstance(old, Reservation)
    assert isinstance(await store.reserve([check], T0 + 15), Reservation)  # trims `old`
    await store.rollback(old)
    assert await store.value("slow", "sliding", 10, T0 + 15) == 1
    assert isinstance(await store.reserve([check], T0 + 16), Reservation)
    assert isinstance(await store.reserve([check], T0 + 17), Refusal)


async def test_float_increments_cap_a_total_exactly(store: RedisStore) -> None:
    def charge(amount: float) -> CounterCheck:
        return CounterCheck("spend", "calendar", 86400, increment=amount, op="lte", limit=100.0)

    for amount in (33.3, 33.3, 33.4):
        assert isinstance(await store.reserve([charge(amount)], T0), Reservation)
    assert isinstance(await store.reserve([charge(0.01)], T0), Refusal)
    assert await store.value("spend", "calendar", 86400, T0) == pytest.approx(100.0)


async def test_two_checks_on_one_counter_see_each_other(store: RedisStore) -> None:
    a = CounterCheck("c", "calendar", 60, increment=3, op="lte", limit=5)
    assert isinstance(await store.reserve([a, a], T0), Refusal)
    assert await store.value("c", "calendar", 60, T0) == 0


async def test_concurrent_reservations_from_two_stores_share_a_limit_exactly(
    redis_server: str, redis_prefix: str
) -> None:
    stores = [RedisStore.from_dsn(redis_server, redis_prefix) for _ in range(2)]
    check = limit("shared", 50)
    try:
        results = await asyncio.gather(*(stores[i % 2].reserve([check], T0 + i / 1000) for i in range(300)))
    finally:
        for s in stores:
            await s.close()
    assert sum(isinstance(r, Reservation) for r in results) == 50


async def test_prefixes_isolate_key_spaces(redis_server: str, redis_prefix: str) -> None:
    a = RedisStore.from_dsn(redis_server, redis_prefix + "a")
    b = RedisStore.from_dsn(redis_server, redis_prefix + "b")
    try:
        assert isinstance(await a.reserve([limit("x", 1)], T0), Reservation)
        assert isinstance(await b.reserve([limit("x", 1)], T0), Reservation)
        assert isinstance(await a.reserve([limit("x", 1)], T0), Refusal)
    finally:
        await a.close()
        await b.close()


async def test_unreachable_redis_raises_state_error_without_the_password() -> None:
    from tests.conftest import free_port

    dsn = f"redis://admin:s3cret-pw@127.0.0.1:{free_port()}/0"
    s = RedisStore.from_dsn(dsn)
    try:
        with pytest.raises(StateError) as info:
            await s.reserve([limit("x", 1)], T0)
        assert "s3cret-pw" not in str(info.value)
        assert "***" in str(info.value)
        with pytest.raises(StateError):
            await s.ping()
    finally:
        await s.close()


def test_redact_dsn_hides_passwords_everywhere() -> None:
    assert redact_dsn("redis://user:pw@host:6380/2") == "redis://user:***@host:6380/2"
    assert redact_dsn("redis://:pw@host/0") == "redis://:***@host/0"
    assert redact_dsn("rediss://host:6379/0") == "rediss://host:6379/0"
    assert redact_dsn("unix:///run/redis.sock?db=1&password=pw") == "unix:///run/redis.sock?db=1&password=***"


def test_a_malformed_dsn_is_refused_with_the_password_redacted() -> None:
    with pytest.raises(ValueError) as info:
        RedisStore.from_dsn("http://u:topsecret@host/0")
    assert "topsecret" not in str(info.value)
    with pytest.raises(ValueError, match="prefix"):
        RedisStore.from_dsn("redis://127.0.0.1:1/0", prefix="has space")


async def test_the_state_factory_opens_redis_urls(redis_server: str, redis_prefix: str) -> None:
    from intercept.state import StateOptions, open_store

    opened = open_store(StateOptions(spec=redis_server, prefix=redis_prefix))
    try:
        assert isinstance(opened, RedisStore)
        assert isinstance(await opened.reserve([limit("f", 1)], T0), Reservation)
        assert await opened.value("f", "sliding", 60, T0) == 1
    finally:
        await opened.close()
