"""The message-channel interface every transport implements (stdio child, stdio self, HTTP).

A channel carries whole JSON-RPC messages as bytes: one message (or one batch array) per
`receive`, without framing (no trailing newline). The router in `intercept.proxy` only ever
sees channels, so a transport plugs in by implementing these three methods:

* `receive()` returns the next message, or None once the peer has closed its side for good.
  A message over the channel's size limit raises `FrameTooLarge` *after* the transport has
  discarded it, so the next `receive()` continues with the following message; nothing is
  buffered beyond the limit.
* `send(data)` delivers one message. Concurrent `send` calls must not interleave bytes of
  two messages; ordering of sends from one task is preserved.
* `close()` releases resources and makes a pending `receive()` return None. Idempotent.

Two optional abilities, each a Protocol of its own that a channel declares by subclassing it
(`relay` asks with `isinstance`):

* `PumpableChannel`: it can hand each message straight to a handler from its read callback
  (`pump`), saving a task switch per message (fd-based stdio);
* `ProxyEndedChannel`: its end is always the proxy's doing, never the peer's, and it says what
  requests still pending are told then (`closed_reason`); for other channels an end means the
  peer left ("the MCP server exited").

Transports know nothing of policy: they never parse JSON, they only frame bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol, runtime_checkable

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Default bound on one message (16 MiB); `intercept run --max-message-bytes` changes it."""


FRAME_EDGE_BYTES = 4096
"""How much of the start and the end of a dropped message a transport keeps (`FrameTooLarge`)."""


class FrameTooLarge(Exception):
    """A message exceeded the channel's size limit and was dropped (the channel stays usable).

    `head` and `tail` are the first and last bytes of the dropped message, at most
    `FRAME_EDGE_BYTES` each (empty where a transport cannot keep them): enough for the router
    to find the message's id, so the request it belongs to can be answered with an error.
    """

    def __init__(self, size: int, limit: int, head: bytes = b"", tail: bytes = b"") -> None:
        self.size = size
        self.limit = limit
        self.head = head[:FRAME_EDGE_BYTES]
        self.tail = tail[-FRAME_EDGE_BYTES:]
        super().__init__(f"message of at least {size} bytes exceeds the {limit}-byte limit")


class MessageChannel(Protocol):
    """One bidirectional stream of JSON-RPC messages to a peer (client or upstream server)."""

    async def receive(self) -> bytes | None:
        """Next message without framing; None at end of stream; FrameTooLarge if oversized."""
        ...

    async def send(self, data: bytes) -> None:
        """Send one message (no framing in `data`); raises ConnectionError if the peer is gone."""
        ...

    async def close(self) -> None:
        """Release the channel; a concurrent or later `receive()` returns None."""
        ...


Handler = Callable[[bytes], Coroutine[Any, Any, None]]
"""What `pump` hands each message to (the router's `from_client` or `from_upstream`)."""
TooLargeHandler = Callable[[FrameTooLarge], Coroutine[Any, Any, None]]
"""What `pump` hands each dropped oversized message to."""


@runtime_checkable
class PumpableChannel(MessageChannel, Protocol):
    """A channel that can run each message's handler eagerly, from the callback that read it."""

    async def pump(self, handle: Handler, too_large: TooLargeHandler) -> None:
        """Hand every message to `handle` (oversized ones to `too_large`), in order, until end of
        input, instead of `receive`. Handlers start outside any task, so they may only be ones that
        need no current task before their first suspension (no `asyncio.timeout`)."""
        ...


@runtime_checkable
class ProxyEndedChannel(MessageChannel, Protocol):
    """A channel that only the proxy ends: its end is never news of the peer (an HTTP upstream)."""

    @property
    def closed_reason(self) -> str:
        """What requests still pending are told when the channel ends (after "... before this
        request was answered")."""
        ...
