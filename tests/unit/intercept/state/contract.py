"""The counter-store contract, one suite for every backend (memory, SQLite, Redis).

To run it against a backend, subclass `CounterStoreContract` in a test module and implement
`open_store` (a fresh, empty store) and, for shared backends, `open_peer` (a second handle on
the same data, as a second proxy process would have; return None if the backend is not shared):

    class TestRedisContract(CounterStoreContract):
        async def open_store(self, tmp_path, request):
            return RedisStore.from_dsn(request.getfixturevalue("redis_server"), "t" + uuid4().hex)
        ...

Times are explicit (`now` arguments), so no test sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from intercept.state.base import CounterCheck, CounterStore, Refusal, Reservation

DAY0 = 1_764_115_200.0  # 2025-11-26 00:00:00 UTC


def sliding(key: str, max_calls: int, window: int = 60) -> CounterCheck:
    return CounterCheck(key, "sliding", window, 1.0, "lte", float(max_calls))


def calendar(key: str, max_calls: int, window: int = 60) -> CounterCheck:
    return CounterCheck(key, "calendar", window, 1.0, "lte", float(max_calls))


class CounterStoreContract:
    """Behaviour every `CounterStore` must have. Subclasses provide the backend."""

    async def open_store(self, tmp_path: Path, request: pytest.FixtureRequest) -> CounterStore:
        raise NotImplementedError

    async def open_peer(
        self, store: CounterStore, tmp_path: Path, request: pytest.FixtureRequest
    ) -> CounterStore | None:
        return None

    @pytest.fixture
    async def store(self, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[CounterStore]:
        opened = await self.open_store(tmp_path, request)
        yield opened
        await opened.close()

    async def test_empty_reserve_is_admitted(self, store: CounterStore) -> None:
        assert isinstance(await store.reserve([], DAY0), Reservation)

    async def test_sliding_limit_admits_max_then_refuses_until_oldest_leaves(
        self, store: CounterStore
    ) -> None:
        check = sliding("tool-a", 3)
        for i in range(3):
            assert isinstance(await store.reserve([check], DAY0 + i), Reservation)
        assert await store.reserve([check], DAY0 + 10) == Refusal(0, 4.0)
        assert await store.value("tool-a", "sliding", 60, DAY0 + 10) == 3.0
        assert isinstance(await store.reserve([check], DAY0 + 60), Reservation)  # entry at DAY0 left
        assert isinstance(await store.reserve([check], DAY0 + 60.5), Refusal)

    async def test_calendar_window_resets_at_the_utc_boundary(self, store: CounterStore) -> None:
        check = calendar("tool-b", 2, 3600)
        start = DAY0 + 3600 * 5
        assert isinstance(await store.reserve([check], start + 3500), Reservation)
        assert isinstance(await store.reserve([check], start + 3599), Reservation)
        assert isinstance(await store.reserve([check], start + 3599.9), Refusal)
        assert isinstance(await store.reserve([check], start + 3600), Reservation)
        assert await store.value("tool-b", "calendar", 3600, start + 3600) == 1.0

    async def test_refusal_moves_no_counter(self, store: CounterStore) -> None:
        first, second = sliding("k1", 5), sliding("k2", 1)
        assert isinstance(await store.reserve([second], DAY0), Reservation)
        refused = await store.reserve([first, second], DAY0 + 1)
        assert refused == Refusal(1, 2.0)
        assert await store.value("k1", "sliding", 60, DAY0 + 1) == 0.0
        assert await store.value("k2", "sliding", 60, DAY0 + 1) == 1.0

    async def test_rollback_returns_the_quota_and_is_idempotent(self, store: CounterStore) -> None:
        checks = [sliding("s", 1), calendar("c", 1, 86400)]
        held = await store.reserve(checks, DAY0)
        assert isinstance(held, Reservation)
        assert isinstance(await store.reserve(checks, DAY0 + 1), Refusal)
        await store.rollback(held)
        await store.rollback(held)
        assert await store.value("s", "sliding", 60, DAY0 + 1) == 0.0
        assert await store.value("c", "calendar", 86400, DAY0 + 1) == 0.0
        assert isinstance(await store.reserve(checks, DAY0 + 2), Reservation)

    async def test_rollback_after_commit_is_a_no_op(self, store: CounterStore) -> None:
        held = await store.reserve([sliding("x", 2)], DAY0)
        assert isinstance(held, Reservation)
        await store.commit(held)
        await store.rollback(held)
        assert await store.value("x", "sliding", 60, DAY0) == 1.0

    async def test_rollback_of_one_reservation_keeps_the_others(self, store: CounterStore) -> None:
        check = sliding("y", 10)
        kept = [await store.reserve([check], DAY0 + i) for i in range(3)]
        assert all(isinstance(r, Reservation) for r in kept)
        await store.rollback(kept[1])  # type: ignore[arg-type]
        assert await store.value("y", "sliding", 60, DAY0 + 3) == 2.0

    async def test_rollback_in_a_later_calendar_window_leaves_the_new_window_alone(
        self, store: CounterStore
    ) -> None:
        check = calendar("z", 5, 60)
        old = await store.reserve([check], DAY0 + 59)
        assert isinstance(old, Reservation)
        assert isinstance(await store.reserve([check], DAY0 + 61), Reservation)
        await store.rollback(old)
        assert await store.value("z", "calendar", 60, DAY0 + 61) == 1.0

    async def test_increments_and_thresholds_use_the_projected_value(self, store: CounterStore) -> None:
        spend = CounterCheck("spend", "calendar", 86400, 400.0, "lte", 1000.0)
        assert isinstance(await store.reserve([spend], DAY0), Reservation)
        assert isinstance(await store.reserve([spend], DAY0 + 1), Reservation)
        assert await store.reserve([spend], DAY0 + 2) == Refusal(0, 1200.0)
        small = CounterCheck("spend", "calendar", 86400, 200.0, "lte", 1000.0)
        assert isinstance(await store.reserve([small], DAY0 + 3), Reservation)
        assert await store.value("spend", "calendar", 86400, DAY0 + 3) == 1000.0

    async def test_unchecked_increment_always_admits(self, store: CounterStore) -> None:
        counter = CounterCheck("count", "calendar", 60, 2.5)
        for i in range(4):
            assert isinstance(await store.reserve([counter], DAY0 + i), Reservation)
        assert await store.value("count", "calendar", 60, DAY0 + 4) == 10.0

    async def test_a_counter_twice_in_one_call_sees_the_earlier_increment(self, store: CounterStore) -> None:
        increment = CounterCheck("dup", "calendar", 60, 3.0)
        ceiling = CounterCheck("dup", "calendar", 60, 0.0, "lte", 5.0)
        assert isinstance(await store.reserve([increment, ceiling], DAY0), Reservation)
        assert await store.reserve([increment, ceiling], DAY0 + 1) == Refusal(1, 6.0)
        assert await store.value("dup", "calendar", 60, DAY0 + 1) == 3.0

    async def test_an_any_of_group_refuses_only_when_every_member_refuses(self, store: CounterStore) -> None:
        def at_most(key: str, limit: float, group: int) -> CounterCheck:
            return CounterCheck(key, "calendar", 60, 0.0, "lte", limit, any_of=group)

        count_a, count_b = CounterCheck("a", "calendar", 60, 1.0), CounterCheck("b", "calendar", 60, 1.0)
        for i in range(3):
            assert isinstance(await store.reserve([count_a, count_b], DAY0 + i), Reservation)
        # a = 3, b = 3. The group [a <= 2, b <= 5] admits through its second member.
        assert isinstance(
            await store.reserve([at_most("a", 2, 7), at_most("b", 5, 7)], DAY0 + 3), Reservation
        )
        # Both members refuse: the refusal names the group's first member and its projection.
        assert await store.reserve([at_most("a", 2, 7), at_most("b", 1, 7)], DAY0 + 4) == Refusal(0, 3.0)
        # A refusing check outside the group still refuses, whatever the group says.
        mixed = [at_most("a", 5, 7), at_most("b", 1, 7), sliding("other", 0)]
        assert await store.reserve(mixed, DAY0 + 5) == Refusal(2, 1.0)
        # Groups are separate: the second group has no admitting member.
        groups = [at_most("a", 5, 1), at_most("a", 1, 2), at_most("b", 1, 2)]
        assert await store.reserve(groups, DAY0 + 6) == Refusal(1, 3.0)
        # A refused call moved no counter, an admitted one applied every increment.
        incrementing = [count_a, at_most("a", 3, 9), at_most("b", 9, 9)]
        assert isinstance(await store.reserve(incrementing, DAY0 + 7), Reservation)
        assert await store.value("a", "calendar", 60, DAY0 + 7) == 4.0

    async def test_counters_with_other_windows_or_kinds_are_separate(self, store: CounterStore) -> None:
        assert isinstance(await store.reserve([sliding("same", 1, 60)], DAY0), Reservation)
        assert isinstance(await store.reserve([sliding("same", 1, 120)], DAY0), Reservation)
        assert isinstance(await store.reserve([calendar("same", 1, 60)], DAY0), Reservation)
        assert isinstance(await store.reserve([sliding("same", 1, 60)], DAY0 + 1), Refusal)

    async def test_comparison_operators(self, store: CounterStore) -> None:
        def probe(op: str, limit: float) -> CounterCheck:
            return CounterCheck(f"op-{op}-{limit}", "calendar", 60, 2.0, op, limit)  # type: ignore[arg-type]

        admitted = {
            ("lt", 3.0): True,
            ("lt", 2.0): False,
            ("lte", 2.0): True,
            ("lte", 1.0): False,
            ("gt", 1.0): True,
            ("gt", 2.0): False,
            ("gte", 2.0): True,
            ("gte", 3.0): False,
            ("eq", 2.0): True,
            ("eq", 3.0): False,
            ("neq", 3.0): True,
            ("neq", 2.0): False,
        }
        for (op, limit), expected in admitted.items():
            result = await store.reserve([probe(op, limit)], DAY0)
            assert isinstance(result, Reservation) is expected, (op, limit)

    async def test_concurrent_reserves_admit_exactly_the_limit(self, store: CounterStore) -> None:
        check = sliding("race", 25)
        results = await asyncio.gather(*(store.reserve([check], DAY0) for _ in range(100)))
        assert sum(isinstance(r, Reservation) for r in results) == 25

    async def test_two_handles_share_limits_exactly(
        self, store: CounterStore, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        peer = await self.open_peer(store, tmp_path, request)
        if peer is None:
            pytest.skip("backend is not shared between processes")
        try:
            check = calendar("shared", 10, 3600)
            calls = [(store if i % 2 else peer).reserve([check], DAY0 + 1) for i in range(40)]
            results = await asyncio.gather(*calls)
            assert sum(isinstance(r, Reservation) for r in results) == 10
            admitted_by_peer = next(r for r in results[::2] if isinstance(r, Reservation))
            assert isinstance(admitted_by_peer, Reservation)
            await peer.rollback(admitted_by_peer)
            assert await store.value("shared", "calendar", 3600, DAY0 + 1) == 9.0
        finally:
            await peer.close()
