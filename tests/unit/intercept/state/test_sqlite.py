"""SQLite specifics: durability across restarts, exact limits across processes, failing closed,
and waiting for another connection's lock off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intercept.engine import Engine
from intercept.policy import load_policy_text
from intercept.proxy import Router
from intercept.state import StateOptions, open_store
from intercept.state import sqlite as sqlite_module
from intercept.state.base import CounterCheck, Refusal, Reservation, StateError
from intercept.state.memory import MemoryStore
from intercept.state.sqlite import SqliteStore

DAY0 = 1_764_115_200.0
LIMIT = CounterCheck("shared", "calendar", 86400, 1.0, "lte", 60.0)


async def test_counters_survive_a_restart(tmp_path: Path) -> None:
    store = SqliteStore.in_directory(tmp_path)
    for i in range(3):
        assert isinstance(
            await store.reserve([CounterCheck("k", "sliding", 60, 1.0, "lte", 3.0)], DAY0 + i), Reservation
        )
    await store.close()
    reopened = SqliteStore.in_directory(tmp_path)
    assert await reopened.value("k", "sliding", 60, DAY0 + 5) == 3.0
    assert isinstance(
        await reopened.reserve([CounterCheck("k", "sliding", 60, 1.0, "lte", 3.0)], DAY0 + 5), Refusal
    )
    mode = sqlite3.connect(tmp_path / "counters.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    await reopened.close()


def _worker(directory: str, calls: int, queue: multiprocessing.Queue[int]) -> None:
    async def go() -> int:
        store = SqliteStore.in_directory(Path(directory))
        admitted = 0
        for _ in range(calls):
            if isinstance(await store.reserve([LIMIT], DAY0 + 10), Reservation):
                admitted += 1
        await store.close()
        return admitted

    queue.put(asyncio.run(go()))


def test_processes_sharing_a_database_share_the_limit_exactly(tmp_path: Path) -> None:
    SqliteStore.in_directory(tmp_path)  # create the schema once, as the first proxy would
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[int] = context.Queue()
    workers = [context.Process(target=_worker, args=(str(tmp_path), 40, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    admitted = [queue.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert sum(admitted) == 60


async def test_a_locked_database_raises_state_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 50)
    store = SqliteStore.in_directory(tmp_path)
    holder = sqlite3.connect(tmp_path / "counters.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateError, match="locked"):
            await store.reserve([LIMIT], DAY0)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(await store.reserve([LIMIT], DAY0), Reservation)
    await store.close()


def test_unopenable_database_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match="cannot open state database"):
        SqliteStore.in_directory(blocker / "state")


def test_factory_opens_each_backend_and_rejects_unknown_specs(tmp_path: Path) -> None:
    assert isinstance(open_store(StateOptions("memory")), MemoryStore)
    sqlite_store = open_store(StateOptions("sqlite", state_dir=tmp_path))
    assert isinstance(sqlite_store, SqliteStore) and sqlite_store.path == tmp_path / "counters.sqlite3"
    with pytest.raises(ValueError, match="unknown --state 'postgres'") as caught:
        open_store(StateOptions("postgres://user:hunter2@db/x"))
    assert "hunter2" not in str(caught.value)


async def test_expired_events_left_untrimmed_never_refuse_a_call(tmp_path: Path) -> None:
    store = SqliteStore.in_directory(tmp_path)
    limit = CounterCheck("lazy", "sliding", 1, 1.0, "lte", 2.0)
    assert isinstance(await store.reserve([limit], DAY0), Reservation)
    assert isinstance(await store.reserve([limit], DAY0 + 0.5), Reservation)
    # Within a second of the last trim the stored total (2) still counts the event at DAY0, now
    # expired; the exact count decides, so the call is admitted and the next one refused.
    assert isinstance(await store.reserve([limit], DAY0 + 1.2), Reservation)
    assert await store.reserve([limit], DAY0 + 1.3) == Refusal(0, 3.0)
    assert await store.value("lazy", "sliding", 1, DAY0 + 1.3) == 2.0
    await store.close()


async def test_lazy_trimming_keeps_the_event_table_bounded(tmp_path: Path) -> None:
    store = SqliteStore.in_directory(tmp_path)
    limit = CounterCheck("bounded", "sliding", 2, 1.0, "lte", 1e9)
    for i in range(400):
        assert isinstance(await store.reserve([limit], DAY0 + i * 0.05), Reservation)
    rows = (
        sqlite3.connect(tmp_path / "counters.sqlite3")
        .execute("SELECT count(*) FROM sliding_event")
        .fetchone()[0]
    )
    # Events stay at most the window plus the trimming interval: (2 s + 1 s) / 0.05 s.
    assert 40 <= rows <= 61
    assert await store.value("bounded", "sliding", 2, DAY0 + 399 * 0.05) == 40.0
    await store.close()


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


async def test_every_state_file_and_directory_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = SqliteStore.in_directory(tmp_path / "a" / "state")
        assert os.umask(0o022) == 0o022  # the store put the caller's umask back
        await store.reserve([LIMIT], DAY0)
        modes = _modes(tmp_path / "a" / "state")
        assert {"counters.sqlite3", "counters.sqlite3-wal", "counters.sqlite3-shm"} <= modes.keys()
        assert set(modes.values()) == {0o600}
        assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "a" / "state").stat().st_mode) == 0o700
        await store.close()
    finally:
        os.umask(old)


async def test_files_an_older_version_left_readable_are_made_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = sqlite3.connect(tmp_path / "counters.sqlite3")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE t (x)")  # keeps the -wal and -shm while this connection is open
        assert _modes(tmp_path)["counters.sqlite3-wal"] == 0o644
        store = SqliteStore.in_directory(tmp_path)
        assert set(_modes(tmp_path).values()) == {0o600}
        await store.close()
        db.close()
    finally:
        os.umask(old)


@pytest.mark.parametrize("name", ["counters.sqlite3", "counters.sqlite3-wal", "counters.sqlite3-shm"])
def test_a_state_file_planted_by_another_user_is_refused(tmp_path: Path, name: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    planted = tmp_path / name
    planted.write_bytes(b"")
    os.chown(planted, 65534, 65534)
    with pytest.raises(StateError) as refused:
        SqliteStore.in_directory(tmp_path)
    message = str(refused.value)
    assert f"state file {planted} belongs to another user (uid 65534)" in message
    assert "remove it" in message and "chown" in message
    assert not (tmp_path / "counters.sqlite3").exists() or name == "counters.sqlite3"


def test_a_state_file_others_can_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "counters.sqlite3").write_bytes(b"")
    (tmp_path / "counters.sqlite3").chmod(0o666)
    with pytest.raises(StateError, match=r"writable by group or others \(mode 0666\).*chmod 600"):
        SqliteStore.in_directory(tmp_path)


def test_a_state_directory_another_user_controls_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(StateError, match=r"state directory .*shared is writable by group or others"):
        SqliteStore.in_directory(shared)
    assert list(shared.iterdir()) == []


@contextlib.contextmanager
def write_lock_held(directory: Path) -> Iterator[None]:
    """Another connection (as another proxy would) holds the database's write lock."""
    holder = sqlite3.connect(directory / "counters.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy timeout far longer than any test: only releasing the lock lets an operation finish."""
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 600_000)


@pytest.mark.usefixtures("patient")
async def test_while_another_connection_holds_the_lock_the_event_loop_goes_on(tmp_path: Path) -> None:
    store = SqliteStore.in_directory(tmp_path)
    limit = CounterCheck("k", "sliding", 60, 1.0, "lte", 1.0)
    with write_lock_held(tmp_path):
        first = asyncio.create_task(store.reserve([limit], DAY0))
        second = asyncio.create_task(store.reserve([limit], DAY0 + 1))
        reading = asyncio.create_task(store.value("k", "sliding", 60, DAY0 + 1))
        # The loop runs other work (here, this test) while the three wait for the lock.
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not (first.done() or second.done() or reading.done())
        assert isinstance(await store.reserve([], DAY0), Reservation)  # no counters: no lock needed
    # Once the lock is free they run in the order they came: the limit of one admits the first.
    assert isinstance(await first, Reservation)
    assert await second == Refusal(0, 2.0)
    assert await reading == 1.0
    assert await store.value("k", "sliding", 60, DAY0 + 1) == 1.0
    await store.close()


@pytest.mark.usefixtures("patient")
async def test_a_rollback_that_waits_for_the_lock_applies_once(tmp_path: Path) -> None:
    store = SqliteStore.in_directory(tmp_path)
    checks = [CounterCheck("s", "sliding", 60, 1.0, "lte", 9.0), CounterCheck("c", "calendar", 86400, 2.0)]
    kept = await store.reserve(checks, DAY0)
    undone = await store.reserve(checks, DAY0 + 1)
    assert isinstance(kept, Reservation) and isinstance(undone, Reservation)
    with write_lock_held(tmp_path):
        rollback = asyncio.create_task(store.rollback(undone))
        await asyncio.sleep(0.1)
        assert not rollback.done()
    await rollback
    await store.rollback(undone)  # settled already: nothing more is undone
    assert await store.value("s", "sliding", 60, DAY0 + 2) == 1.0
    assert await store.value("c", "calendar", 86400, DAY0 + 2) == 2.0
    await store.close()


@pytest.mark.usefixtures("patient")
async def test_a_reserve_abandoned_while_it_waits_for_the_lock_leaves_nothing_counted(tmp_path: Path) -> None:
    store = SqliteStore.in_directory(tmp_path)
    limit = CounterCheck("k", "calendar", 86400, 1.0, "lte", 1.0)
    with write_lock_held(tmp_path):
        waiting = asyncio.create_task(store.reserve([limit], DAY0))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    # Once the lock was free the worker found its caller gone and rolled back instead of committing.
    assert isinstance(await store.reserve([limit], DAY0), Reservation)
    assert await store.value("k", "calendar", 86400, DAY0) == 1.0
    await store.close()


POLICY = """
tools:
  counted:
    rules:
      - name: five a minute
        rate_limit: {max: 5, window: 60}
"""


class Peer:
    """One client session's router, with what it sent to each side."""

    def __init__(self, store: SqliteStore) -> None:
        self.to_client: list[Any] = []
        self.to_upstream: list[Any] = []
        self.router = Router(
            Engine(load_policy_text(POLICY)),
            store,
            send_client=self._client,
            send_upstream=self._upstream,
            clock=lambda: DAY0,
        )

    async def _client(self, data: bytes) -> None:
        self.to_client.append(json.loads(data))

    async def _upstream(self, data: bytes) -> None:
        self.to_upstream.append(json.loads(data))

    async def call(self, message_id: int, tool: str) -> None:
        request = {"jsonrpc": "2.0", "id": message_id, "method": "tools/call", "params": {"name": tool}}
        await self.router.from_client(json.dumps(request).encode())

    async def answer(self, message_id: int) -> None:
        result = {"content": [{"type": "text", "text": "done"}]}
        await self.router.from_upstream(
            json.dumps({"jsonrpc": "2.0", "id": message_id, "result": result}).encode()
        )


@pytest.mark.usefixtures("patient")
async def test_a_session_whose_call_waits_for_the_lock_does_not_hold_up_another(tmp_path: Path) -> None:
    store = SqliteStore.in_directory(tmp_path)
    one, two = Peer(store), Peer(store)
    with write_lock_held(tmp_path):
        counted = asyncio.create_task(one.call(1, "counted"))
        await asyncio.sleep(0.05)
        # The other session's uncounted call and tools/list go through and are answered meanwhile.
        await two.call(1, "free")
        await two.router.from_client(b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}')
        await two.answer(1)
        await two.router.from_upstream(b'{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}')
        assert [m["id"] for m in two.to_client] == [1, 2]
        assert not counted.done() and one.to_upstream == []
    await counted
    assert [m["params"]["name"] for m in one.to_upstream] == ["counted"]
    await one.answer(1)
    assert one.to_client[0]["result"]["content"][0]["text"] == "done"
    assert await store.value("rate:counted:five a minute", "sliding", 60, DAY0) == 1.0
    await store.close()


def test_proxies_setting_up_a_new_database_at_once_all_open_it(tmp_path: Path) -> None:
    # Converting a new database to WAL can fail at once with SQLITE_BUSY in all but one of the
    # openers (SQLite skips the busy handler where waiting could deadlock); each must retry.
    # The race is rare per round, so many rounds are run.
    for round_number in range(50):
        path = tmp_path / f"round-{round_number}" / "counters.sqlite3"
        opened: list[SqliteStore] = []
        failures: list[BaseException] = []

        def open_store(target: Path, opened: list[SqliteStore], failures: list[BaseException]) -> None:
            try:
                opened.append(SqliteStore(target))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=open_store, args=(path, opened, failures)) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for store in opened:
            asyncio.run(store.close())
        assert failures == [], f"round {round_number}: {failures[0]}"
        assert len(opened) == 3
