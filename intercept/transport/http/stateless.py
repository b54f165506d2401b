"""Stateless requests (protocol 2026-07-28 and later): which ones the listener takes, without a session.

Such a request names its revision (`MCP-Protocol-Version`, or `params._meta`) and has no
`initialize` and no session: a stray `Mcp-Session-Id` is ignored, as the revision says. One the
listener takes runs in a one-shot session of its own (`ListenerChannel.one_shot`), whose
`_meta` envelope the proxy repeats on the requests it sends upstream itself; that session ends
once its one exchange is answered.
"""

from __future__ import annotations

from typing import Any

from intercept.transport.http.asgi import Reply, error_reply


def sessionless_reply(served: bool, message: Any, requests: list[dict[str, Any]]) -> Reply | None:
    """What a stateless POST is answered without a session: a refusal, or 202 for a notification;
    None when it needs a one-shot session. `served`: `--stateless` is on."""
    if not served:
        return error_reply(400, "stateless protocol revisions (2026-07-28 and later) are not served here")
    if not isinstance(message, dict):
        return error_reply(400, "a stateless request carries one JSON-RPC message, not a batch")
    if not requests:
        return Reply(202)
    return None
