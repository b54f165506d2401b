"""The bare ASGI pieces the listener answers with: request headers, and a response sent in one go.

The usual exchange (one POST, one answer) builds no framework request or response objects; only
the long-lived streams use Starlette's `StreamingResponse`, for its handling of clients that
disconnect mid-stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import StreamingResponse

from intercept.protocol import jsonrpc

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = dict[str, str]
"""Request headers by lower-case name; the first of repeated fields wins."""


@dataclass(slots=True)
class Reply:
    """A complete HTTP response (status, body, headers), sent in one go."""

    status: int
    body: bytes = b""
    media_type: str | None = None
    headers: Headers = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(b"content-length", str(len(self.body)).encode())]
        if self.media_type is not None:
            raw.append((b"content-type", self.media_type.encode()))
        raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items())
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


Response = Reply | StreamingResponse


def request_headers(scope: Scope) -> Headers:
    headers: Headers = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


def error_reply(
    status: int, message: str, code: int = jsonrpc.INVALID_REQUEST, headers: Headers | None = None
) -> Reply:
    """An HTTP error whose body is a JSON-RPC error without an id."""
    return Reply(status, jsonrpc.encode_error(code, message, None), "application/json", headers or {})
