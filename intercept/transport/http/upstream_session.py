"""The upstream client's MCP session: the id and protocol version the server gave, the headers they
make, and re-initialization when the server forgets the session.

Values learned from the server are checked before they go into a header (see
`intercept.protocol.mcp_headers`): an `initialize` answer whose `protocolVersion` is not a
revision date, or a session id that is not visible ASCII, fails the `initialize` with a JSON-RPC
error instead of starting a session.

A 404 for the session re-runs the client's own `initialize` under a private request id (and its
`notifications/initialized`), once for all the requests that met the expired session.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from intercept.protocol.fastjson import id_key
from intercept.protocol.mcp_headers import (
    PROTOCOL_VERSION_RULE,
    SESSION_HEADER,
    SESSION_ID_RULE,
    request_headers,
    valid_protocol_version,
    valid_session_id,
)
from intercept.transport.http.upstream_answer import HTTP_ERRORS

log = logging.getLogger(__name__)

PROTOCOL_HEADER = "mcp-protocol-version"
REINIT_ID = "intercept-reinitialize"
"""The request id of the proxy's own re-initialization (never one a client's answer carries)."""

BAD_SESSION_ID = f"upstream assigned an Mcp-Session-Id that is not {SESSION_ID_RULE}; the session is not used"
BAD_PROTOCOL_VERSION = (
    f"upstream initialize result.protocolVersion is not {PROTOCOL_VERSION_RULE}; the session is not used"
)


class UpstreamSession:
    """One channel's session with the upstream (none yet, or none at all for a sessionless server)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)
        """`--header` values, sent on every request."""
        self.id: str | None = None
        self.protocol_version: str | None = None
        self.initialize: dict[str, Any] | None = None
        """The client's `initialize` request, kept to re-initialize with."""
        self.initialized_note: bytes | None = None
        self.ready = asyncio.Event()
        """Clear while an `initialize` is under way: what follows needs the id its answer assigns."""
        self.ready.set()
        self._reinit_lock = asyncio.Lock()

    def base_headers(self) -> dict[str, str]:
        """The headers of every request: `--header` values, the session id and protocol version."""
        headers = dict(self._headers)
        if self.id is not None:
            headers[SESSION_HEADER] = self.id
        if self.protocol_version is not None:
            headers[PROTOCOL_HEADER] = self.protocol_version
        return headers

    def adopt(self, assigned: str | None) -> bool:
        """Take the session id an `initialize` answer assigned (if any); False, logged, if it is not
        fit for a header: the session is not used."""
        if assigned is not None and not valid_session_id(assigned):
            log.error("%s", BAD_SESSION_ID)
            return False
        self.id = assigned or self.id
        return True

    def note_protocol(self, items: list[Any]) -> bool:
        """Learn the version an `initialize` answer negotiated (sent as a header from then on);
        False if it is not a revision date: it must never reach a header, and the session is unusable."""
        for item in items:
            result = item.get("result") if isinstance(item, dict) else None
            if (
                isinstance(result, dict)
                and isinstance(result.get("protocolVersion"), str)
                and self.initialize is not None
                and id_key(item.get("id")) in {id_key(self.initialize.get("id")), id_key(REINIT_ID)}
            ):
                version = result["protocolVersion"]
                if not valid_protocol_version(version):
                    log.error("%s", BAD_PROTOCOL_VERSION)
                    self.id = None
                    return False
                self.protocol_version = version
        return True

    async def reinitialize(
        self, stale: str, client: aiohttp.ClientSession, url: URL, proxy: str | None
    ) -> bool:
        """Replace the expired session `stale` by running the client's initialize again under a
        private id; True once a new session exists (perhaps made by a concurrent request)."""
        if self.initialize is None:
            return False
        async with self._reinit_lock:
            if self.id != stale:
                return self.id is not None  # another request already re-initialized
            self.id = None
            self.ready.clear()
            try:
                body = json.dumps({**self.initialize, "id": REINIT_ID}, separators=(",", ":")).encode()
                headers = {**self.base_headers(), "content-type": "application/json"}
                headers["accept"] = "application/json, text/event-stream"
                headers.update(request_headers(self.initialize))
                async with client.post(
                    url, data=body, headers=headers, allow_redirects=False, proxy=proxy
                ) as response:
                    if response.status >= 400:
                        return False
                    if not self.adopt(response.headers.get(SESSION_HEADER)):
                        return False
                    await response.read()
                if self.initialized_note is not None:
                    headers = self.base_headers()
                    headers.update(
                        {"content-type": "application/json", "mcp-method": "notifications/initialized"}
                    )
                    async with client.post(
                        url, data=self.initialized_note, headers=headers, allow_redirects=False, proxy=proxy
                    ) as response:
                        await response.read()
                log.info("upstream session expired; re-initialized")
                return self.id is not None
            except HTTP_ERRORS:
                return False
            finally:
                self.ready.set()
