"""Serve an `HttpListener` with uvicorn until the caller says stop; signals stay with the caller."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from intercept.transport.http.limits import guarded_protocol
from intercept.transport.http.listener import HttpListener


class _Server(uvicorn.Server):
    """uvicorn's server, leaving SIGINT and SIGTERM to the proxy and telling when it listens."""

    def __init__(self, config: uvicorn.Config, started: asyncio.Event | None) -> None:
        super().__init__(config)
        self._started_event = started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would install its own handlers for the duration of `serve`; the proxy has its own
        # (they set `stop`), so it decides how to shut down.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._started_event is not None:
            self._started_event.set()


async def serve(
    listener: HttpListener, started: asyncio.Event | None = None, stop: asyncio.Event | None = None
) -> None:
    """Run uvicorn on the listener's address until `stop` is set (or the task is cancelled);
    `started` is set once it listens. OSError if it cannot listen."""
    address = listener.options.address
    config = uvicorn.Config(
        listener.app,
        interface="asgi3",  # a bound method is not auto-detected as ASGI 3
        host=address.host,
        port=address.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # One write per small response (coalesced); deadlines and a connection cap (limits).
        http=guarded_protocol(listener.guard),
        ws="none",
        proxy_headers=False,  # clients are not behind a trusted proxy; X-Forwarded-* is not read
        server_header=False,
        timeout_graceful_shutdown=2,
    )
    server = _Server(config, started)

    async def stop_when_asked(stop: asyncio.Event) -> None:
        await stop.wait()
        server.should_exit = True  # uvicorn's main loop sees it on its next tick

    watcher = asyncio.create_task(stop_when_asked(stop)) if stop is not None else None
    try:
        await server.serve()
    except SystemExit:
        # uvicorn exits the process when it cannot bind; report it as an error instead.
        raise OSError(f"could not listen on {address}") from None
    finally:
        if watcher is not None:
            watcher.cancel()
        await listener.shutdown()
    if not server.started:
        raise OSError(f"could not listen on {address}")
