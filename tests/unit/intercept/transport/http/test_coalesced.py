"""CoalescingTransport: a response head leaves with the write after it, or on the loop's next turn."""

from __future__ import annotations

import asyncio
from typing import Any

from intercept.transport.http.coalesced import CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default


def wrap() -> tuple[CoalescingTransport, FakeTransport]:
    inner = FakeTransport()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


async def test_head_and_body_leave_in_one_write() -> None:
    transport, inner = wrap()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert inner.writes == []
    assert transport.get_write_buffer_size() > 0
    transport.write(b"{}")
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)
    assert len(inner.writes) == 1  # the scheduled flush finds nothing held


async def test_a_head_without_a_following_write_goes_out_on_the_next_turn() -> None:
    transport, inner = wrap()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    await asyncio.sleep(0)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]


async def test_interim_answers_and_body_bytes_are_not_held() -> None:
    transport, inner = wrap()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(b"data: x\n\n")
    assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n", b"data: x\n\n"]


async def test_close_sends_a_held_head_first_and_abort_drops_it() -> None:
    transport, inner = wrap()
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    transport.close()
    assert inner.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"] and inner.closed
    transport, inner = wrap()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == [] and inner.aborted


async def test_other_transport_methods_pass_through() -> None:
    transport, _ = wrap()
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
