"""The HTTP headers a Streamable HTTP request mirrors from its JSON-RPC body (protocol 2026-07-28).

`Mcp-Method` carries the method; `Mcp-Name` the tool or prompt name (`tools/call`,
`prompts/get`) or the resource URI (`resources/read`); `MCP-Protocol-Version` the version a
request names in `params._meta["io.modelcontextprotocol/protocolVersion"]`. A value that would
not survive as an HTTP field (non-ASCII, control characters, edge whitespace) travels as
`=?base64?<base64 of its UTF-8>?=`. The upstream client writes these headers; the listener
compares them with the body and refuses a request whose headers say something else.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
FIRST_STATELESS_VERSION = "2026-07-28"
"""Protocol revisions from this date on have no `initialize` and no sessions."""

HEADER_MISMATCH = -32020
"""JSON-RPC error code for headers that disagree with the body (the MCP SDKs' `HEADER_MISMATCH`)."""

NAME_PARAMS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

_SENTINEL = re.compile(r"=\?base64\?(?P<payload>[A-Za-z0-9+/=]*)\?=")
_SENTINEL_START = "=?base64?"


def encode_value(value: str) -> str:
    # isascii + isprintable: printable ASCII (0x20-0x7e), checked without a regex.
    if (
        value.isascii()
        and value.isprintable()
        and value == value.strip()
        and not (value.startswith(_SENTINEL_START) and _SENTINEL.fullmatch(value))
    ):
        return value
    return f"=?base64?{base64.b64encode(value.encode('utf-8')).decode('ascii')}?="


def decode_value(value: str) -> str | None:
    """The header's value, unwrapped from base64 if it is wrapped; None if the wrapping is corrupt."""
    if not value.startswith(_SENTINEL_START):
        return value
    match = _SENTINEL.fullmatch(value)
    if match is None:
        return value
    payload = match.group("payload")
    try:
        raw = base64.b64decode(payload, validate=True)
        if base64.b64encode(raw).decode("ascii") != payload:
            return None
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def protocol_version(message: Any) -> str | None:
    """The protocol version a request names in its `_meta`, if any."""
    params = message.get("params") if isinstance(message, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(PROTOCOL_VERSION_META_KEY) if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def is_stateless_version(version: str | None) -> bool:
    # Revisions are dates, so they compare as strings.
    return version is not None and version >= FIRST_STATELESS_VERSION


ENVELOPE_KEYS = (
    PROTOCOL_VERSION_META_KEY,
    "io.modelcontextprotocol/clientInfo",
    "io.modelcontextprotocol/clientCapabilities",
)
"""The `_meta` keys every 2026-07-28 request carries (the per-request envelope)."""


def envelope_of(message: Any) -> dict[str, Any] | None:
    """The envelope keys of a request's `_meta`, if it names a 2026-07-28 or later version."""
    if not is_stateless_version(protocol_version(message)):
        return None
    meta = message["params"]["_meta"]
    return {key: meta[key] for key in ENVELOPE_KEYS if key in meta}


def add_envelope(message: Any, envelope: dict[str, Any]) -> Any:
    """`message` with `envelope` in its `_meta` if it is a request that names no protocol version
    (one of the proxy's own: a 2026-07-28 client's requests all carry it); else `message` itself."""
    if (
        not isinstance(message, dict)
        or not isinstance(message.get("method"), str)
        or "id" not in message
        or message["method"] == "initialize"
        or protocol_version(message) is not None
    ):
        return message
    params = message.get("params")
    params = dict(params) if isinstance(params, dict) else {}
    meta = params.get("_meta")
    params["_meta"] = {**(meta if isinstance(meta, dict) else {}), **envelope}
    return {**message, "params": params}


def request_headers(message: Any) -> dict[str, str]:
    """The mirrored headers for one message: empty for responses and batches."""
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return {}
    method: str = message["method"]
    headers = {"mcp-method": encode_value(method)}
    params = message.get("params")
    field = NAME_PARAMS.get(method)
    if field and isinstance(params, dict) and isinstance(params.get(field), str):
        headers["mcp-name"] = encode_value(params[field])
    version = protocol_version(message)
    if version is not None:
        headers["mcp-protocol-version"] = encode_value(version)
    return headers


def mismatch(sent: dict[str, str], message: Any) -> str | None:
    """The first of `sent` (lower-case names) that disagrees with the body, or None.

    A header that is absent is not a mismatch, except `Mcp-Name` when `Mcp-Method` is sent for a
    method that names something: a request must not be able to hide its target from a gateway.
    """
    expected = request_headers(message)
    for header in ("mcp-method", "mcp-name", "mcp-protocol-version"):
        value = sent.get(header)
        if value is None:
            continue
        if header == "mcp-protocol-version" and "mcp-protocol-version" not in expected:
            continue  # a session's negotiated version; the body names none to compare with
        wanted = expected.get(header)
        if wanted is None or decode_value(value) != decode_value(wanted):
            return header
    if "mcp-method" in sent and "mcp-name" in expected and "mcp-name" not in sent:
        return "mcp-name"
    return None
