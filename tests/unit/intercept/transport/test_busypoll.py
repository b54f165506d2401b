"""The polling selector: spins only after activity, only with an idle core, never past its budget."""

from __future__ import annotations

import asyncio
import os
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercept.transport.busypoll import PollingSelector, make_idle_cpu_probe, polling_loop_factory


class CountingSelector(PollingSelector):
    def __init__(self, spin_seconds: float, idle: bool) -> None:
        super().__init__(spin_seconds, idle_cpu=lambda: idle)
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


@pytest.mark.parametrize(
    ("loadavg", "cpus_extra", "expected"),
    [
        ("0.50 0.40 0.30 1/200 999\n", 0, True),
        ("3.0 2.0 1.0 {n}/300 999\n", 1, False),
        ("garbage\n", 0, False),
    ],
)
def test_idle_cpu_probe_reads_the_kernels_runnable_count(
    tmp_path: Path, loadavg: str, cpus_extra: int, expected: bool
) -> None:
    cpus = len(os.sched_getaffinity(0))
    stats = tmp_path / "loadavg"
    stats.write_text(loadavg.format(n=cpus + cpus_extra))
    assert make_idle_cpu_probe(str(stats))() is expected
    assert make_idle_cpu_probe(str(tmp_path / "missing"))() is False


def test_loop_factory_runs_coroutines_and_zero_turns_polling_off() -> None:
    assert polling_loop_factory(0) is None
    factory = polling_loop_factory(0.0001)
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        began = time.monotonic()
        assert runner.run(asyncio.sleep(0.01, result="done")) == "done"
        assert time.monotonic() - began >= 0.01
