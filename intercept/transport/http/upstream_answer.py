"""What comes back for a request to the upstream: its HTTP answer from either client, or the
JSON-RPC error the request gets instead when none usable arrives (so a client never waits on silence)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp

UPSTREAM_UNAVAILABLE = -32000
"""JSON-RPC error code for 'the upstream could not be reached or answered badly'."""

HTTP_ERRORS = (aiohttp.ClientError, OSError)
"""What a failed exchange raises (TimeoutError is an OSError)."""


def error_response(request_id: Any, message: str, code: int = UPSTREAM_UNAVAILABLE) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}},
        separators=(",", ":"),
    ).encode()


class Answer(Protocol):
    """An upstream POST's response, from either HTTP client."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self, limit: int) -> bytes | None: ...

    def complete_body(self) -> bytes | None: ...

    def close(self) -> None: ...


class AiohttpAnswer:
    """aiohttp's response as an `Answer` (used when the upstream is reached through a proxy)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()

    async def read(self, limit: int) -> bytes | None:
        parts: list[bytes] = []
        size = 0
        async for chunk in self._response.content.iter_any():
            size += len(chunk)
            if size > limit:
                return None
            parts.append(chunk)
        return b"".join(parts)

    def complete_body(self) -> bytes | None:
        return None

    def close(self) -> None:
        self._response.release()
