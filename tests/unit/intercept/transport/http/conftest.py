"""Fixtures for the listener's tests: the echoing session runner and an HTTP client of the listener."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.unit.intercept.transport.http.listener_support import BASE, EchoSessions, make_listener


@pytest.fixture
def sessions() -> EchoSessions:
    return EchoSessions()


@pytest.fixture
async def client(sessions: EchoSessions) -> AsyncIterator[httpx.AsyncClient]:
    listener = make_listener(sessions, client_token=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        yield c
    await listener.shutdown()
