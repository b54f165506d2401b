"""Pumping one client session: two message channels through a `Router` until the upstream ends.

`relay` is all `intercept run` does per session, on every transport. When both channels can
hand messages straight from their read callbacks (`PumpableChannel`, the stdio fast path) and
the counter store is safe to start outside a task, it dispatches eagerly; otherwise it reads in
two tasks. What the client is told about its unanswered requests is what really happened: the
client left, the server exited, or the proxy closed its upstream session.
"""

from __future__ import annotations

import asyncio

from intercept.proxy import CLIENT_LEFT, SERVER_EXITED, Router
from intercept.transport.base import (
    FrameTooLarge,
    Handler,
    MessageChannel,
    ProxyEndedChannel,
    PumpableChannel,
    TooLargeHandler,
)


async def relay(router: Router, client: MessageChannel, upstream: MessageChannel) -> None:
    """Pump messages both ways until the upstream ends. Client EOF closes the upstream's input."""

    # Eager dispatch runs handlers outside a task until they first suspend, which is safe only
    # when everything they call is: both channels fd-based (stdio) and a store that never suspends.
    eager = (
        router.store.eager_safe
        and isinstance(client, PumpableChannel)
        and isinstance(upstream, PumpableChannel)
    )

    client_ended = False

    async def client_to_upstream() -> None:
        nonlocal client_ended
        await _pump(client, router.from_client, router.client_frame_too_large, eager)
        client_ended = True
        await upstream.close()

    async def upstream_to_client() -> None:
        await _pump(upstream, router.from_upstream, router.upstream_frame_too_large, eager)
        # What the client is told about its unanswered requests must be what happened.
        if client_ended:
            reason = CLIENT_LEFT
        elif isinstance(upstream, ProxyEndedChannel):
            reason = upstream.closed_reason
        else:
            reason = SERVER_EXITED
        await router.upstream_closed(reason)

    inbound = asyncio.create_task(client_to_upstream(), name="client->upstream")
    outbound = asyncio.create_task(upstream_to_client(), name="upstream->client")
    try:
        done, _ = await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
        if outbound not in done and inbound.exception() is None:
            await outbound  # the client finished; the upstream ends once it has seen EOF
    finally:
        for task in (inbound, outbound):
            if not task.done():
                task.cancel()
        await asyncio.gather(inbound, outbound, return_exceptions=True)
    for task in (inbound, outbound):
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _pump(channel: MessageChannel, handle: Handler, too_large: TooLargeHandler, eager: bool) -> None:
    """Hand every message of `channel` to `handle` until it ends."""
    if eager and isinstance(channel, PumpableChannel):
        await channel.pump(handle, too_large)
        return
    while True:
        try:
            raw = await channel.receive()
        except FrameTooLarge as exc:
            await too_large(exc)
            continue
        if raw is None:
            return
        await handle(raw)
