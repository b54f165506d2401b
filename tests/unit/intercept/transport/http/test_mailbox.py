"""Mailbox: FIFO order, waiting readers, cancellation that loses no item."""

from __future__ import annotations

import asyncio

import pytest

from intercept.transport.http.mailbox import Mailbox


async def test_items_come_out_in_order_and_get_nowait_refuses_when_empty() -> None:
    box: Mailbox[int] = Mailbox()
    for item in (1, 2, 3):
        box.put_nowait(item)
    assert box.qsize() == 3
    assert [await box.get(), box.get_nowait(), await box.get()] == [1, 2, 3]
    assert box.empty()
    with pytest.raises(asyncio.QueueEmpty):
        box.get_nowait()


async def test_a_waiting_reader_gets_the_next_item() -> None:
    box: Mailbox[str] = Mailbox()
    reader = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not reader.done()
    box.put_nowait("x")
    assert await reader == "x"


async def test_a_cancelled_reader_leaves_the_item_for_the_next_one() -> None:
    box: Mailbox[str] = Mailbox()
    first = asyncio.create_task(box.get())
    second = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    first.cancel()
    box.put_nowait("only")
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "only"
    assert box.empty()
