"""The polling selector: spins only after activity, backs off under CPU contention, never past its budget."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.transport import busypoll
from intercept.transport.busypoll import PollingSelector, make_wait_probe, polling_loop_factory


class CountingSelector(PollingSelector):
    """Records every epoll timeout; run-queue waits come from `waits` (0 ns each by default)."""

    def __init__(self, spin_seconds: float, idle: bool = True, waits: list[int] | None = None) -> None:
        self.waits = waits if waits is not None else []
        total = [0]

        def probe() -> int | None:
            if not idle:
                return None
            total[0] += self.waits.pop(0) if self.waits else 0
            return total[0]

        super().__init__(spin_seconds, wait_probe=probe)
        self.timeouts: list[float | None] = []

    def _poll(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        self.timeouts.append(timeout)
        return super()._poll(timeout)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def _prime(selector: CountingSelector, pair: tuple[socket.socket, socket.socket]) -> None:
    """Register the reading end and make one poll find work, as after a handled message."""
    selector.register(pair[0], selectors.EVENT_READ)
    pair[1].send(b"x")
    assert selector.select(1.0)
    pair[0].recv(1)
    selector.timeouts.clear()


def test_after_activity_it_polls_without_blocking_until_the_budget_is_spent(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    selector = CountingSelector(0.005, idle=True)
    _prime(selector, pair)
    assert selector.select(0.05) == []
    spins, last = selector.timeouts[:-1], selector.timeouts[-1]
    assert len(spins) > 1 and set(spins) == {0}
    assert last is not None and 0.0 <= last <= 0.05 - 0.005 + 0.001  # the spin came out of the timeout
    selector.close()


def test_a_message_arriving_during_the_spin_is_returned_without_sleeping(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    selector = CountingSelector(0.5, idle=True)
    _prime(selector, pair)
    timer = threading.Timer(0.01, pair[1].send, args=(b"y",))
    timer.start()
    ready = selector.select(None)
    timer.join()
    assert [key.fileobj for key, _ in ready] == [pair[0]]
    assert set(selector.timeouts) == {0}  # never a blocking poll
    selector.close()


@pytest.mark.parametrize(
    ("idle", "primed", "timeout"), [(False, True, 0.01), (True, False, 0.01), (True, True, 0)]
)
def test_no_spin_when_busy_idle_or_asked_not_to_wait(
    pair: tuple[socket.socket, socket.socket], idle: bool, primed: bool, timeout: float
) -> None:
    selector = CountingSelector(0.5, idle=idle)
    if primed:
        _prime(selector, pair)
    else:
        selector.register(pair[0], selectors.EVENT_READ)
    selector.select(timeout)
    assert selector.timeouts == [timeout]
    selector.close()


def test_an_empty_blocking_poll_ends_the_active_phase(pair: tuple[socket.socket, socket.socket]) -> None:
    selector = CountingSelector(0.001, idle=True)
    _prime(selector, pair)
    selector.select(0.002)  # spins, then times out with nothing
    selector.timeouts.clear()
    selector.select(0.002)
    assert selector.timeouts == [0.002]
    selector.close()


def test_repeated_run_queue_waits_stop_the_spinning_for_a_while(
    pair: tuple[socket.socket, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    contended = busypoll.CONTENDED_WAIT_NS + 1
    waits = [0] + [contended] * busypoll.CONTENDED_SPINS_TO_BACK_OFF
    selector = CountingSelector(0.0005, waits=waits)
    _prime(selector, pair)

    def spun_then_found_work() -> bool:
        selector.timeouts.clear()
        pair[1].send(b"z")
        ready = selector.select(1.0)
        pair[0].recv(1)
        return bool(ready) and selector.timeouts[0] == 0

    for _ in range(busypoll.CONTENDED_SPINS_TO_BACK_OFF):  # the first reading, then waits below the verdict
        assert spun_then_found_work()
    assert not spun_then_found_work()  # the last contended spin: back off
    assert selector.timeouts == [1.0]
    monkeypatch.setattr(busypoll, "BACK_OFF_SECONDS", 0.0)
    selector._calm_at = 0.0
    assert spun_then_found_work()  # after the calm period it tries again
    selector.close()


def test_occasional_waits_do_not_stop_the_spinning(pair: tuple[socket.socket, socket.socket]) -> None:
    contended = busypoll.CONTENDED_WAIT_NS + 1
    pattern = [contended] + [0] * (busypoll.SPINS_PER_VERDICT // 2)  # one spin in 17 waited
    selector = CountingSelector(0.0005, waits=pattern * 20)
    _prime(selector, pair)
    for _ in range(len(pattern) * 20):
        selector.timeouts.clear()
        pair[1].send(b"z")
        assert selector.select(1.0)
        pair[0].recv(1)
        assert selector.timeouts[0] == 0
    selector.close()


def test_wait_probe_reads_this_threads_schedstat(tmp_path: Path) -> None:
    probe = make_wait_probe()
    first = probe()
    if first is None:
        pytest.skip("this kernel publishes no schedstat")
    second = probe()
    assert second is not None and second >= first >= 0
    fake = tmp_path / "schedstat"
    fake.write_text("100 2500 7\n")
    assert make_wait_probe(str(fake))() == 2500
    fake.write_text("garbage\n")
    assert make_wait_probe(str(fake))() is None
    assert make_wait_probe(str(tmp_path / "missing"))() is None


def test_loop_factory_runs_coroutines_and_zero_turns_polling_off() -> None:
    assert polling_loop_factory(0) is None
    factory = polling_loop_factory(0.0001)
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        began = time.monotonic()
        assert runner.run(asyncio.sleep(0.01, result="done")) == "done"
        assert time.monotonic() - began >= 0.01
