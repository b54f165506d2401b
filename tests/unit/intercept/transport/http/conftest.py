"""Fixtures for the HTTP transport tests: the listener's echoing session runner and HTTP client, and the
clean-up of the upstream client's fake servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.unit.intercept.transport.http.listener_support import BASE, EchoSessions, make_listener
from tests.unit.intercept.transport.http.upstream_support import RUNNERS


@pytest.fixture
def sessions() -> EchoSessions:
    return EchoSessions()


@pytest.fixture
async def client(sessions: EchoSessions) -> AsyncIterator[httpx.AsyncClient]:
    listener = make_listener(sessions, client_token=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=listener.app), base_url=BASE) as c:
        yield c
    await listener.shutdown()


@pytest.fixture(autouse=True)
async def stop_fake_servers() -> AsyncIterator[None]:
    yield
    while RUNNERS:
        await RUNNERS.pop().cleanup()
