"""The HTTP headers a Streamable HTTP request mirrors from its JSON-RPC body (protocol 2026-07-28).

`Mcp-Method` carries the method; `Mcp-Name` the tool or prompt name (`tools/call`,
`prompts/get`) or the resource URI (`resources/read`); `MCP-Protocol-Version` the version a
request names in `params._meta["io.modelcontextprotocol/protocolVersion"]`. A value that would
not survive as an HTTP field (non-ASCII, control characters, edge whitespace) travels as
`=?base64?<base64 of its UTF-8>?=`. The upstream client writes these headers; the listener
compares them with the body and refuses a request whose headers say something else.

Every value the proxy writes into a request header is checked first, so no peer can smuggle a
line break (and with it a second request) into the upstream connection: protocol revisions must
be `YYYY-MM-DD` dates, session ids visible ASCII (0x21-0x7E, as the MCP spec requires), and
`--header` options an HTTP token name with a value free of control characters.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

SESSION_HEADER = "mcp-session-id"
"""The Streamable HTTP session id header, by its lower-case name."""
PROTOCOL_VERSION_META_KEY = "io.modelcontextprotocol/protocolVersion"
FIRST_STATELESS_VERSION = "2026-07-28"
"""Protocol revisions from this date on have no `initialize` and no sessions."""

HEADER_MISMATCH = -32020
"""JSON-RPC error code for headers that disagree with the body (the MCP SDKs' `HEADER_MISMATCH`)."""

NAME_PARAMS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

PROTOCOL_VERSION_RULE = "a YYYY-MM-DD revision date"
SESSION_ID_RULE = "visible ASCII (0x21-0x7E)"
_PROTOCOL_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SESSION_ID = re.compile(r"[\x21-\x7e]+")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20\x09]*[\x21-\x7e])*)?")
"""Printable ASCII and inner spaces or tabs: no control characters (CR, LF, NUL), no edge whitespace."""

PROXY_SET_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "accept",
        "last-event-id",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
    }
)
"""Headers the proxy writes itself (framing, content negotiation, MCP session and mirroring)."""


class UnsafeHeader(ValueError):
    """A value that cannot go into a request header; the message names where it came from, not the value."""


def valid_protocol_version(value: object) -> bool:
    return isinstance(value, str) and _PROTOCOL_VERSION.fullmatch(value) is not None


def valid_session_id(value: object) -> bool:
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def valid_field_value(value: str) -> bool:
    return _FIELD_VALUE.fullmatch(value) is not None


def parse_header_option(option: str) -> tuple[str, str]:
    """`"Name: value"` (a `--header` option) to a pair; ValueError naming the problem, never the value
    (it is usually a credential)."""
    name, sep, content = option.partition(":")
    name, content = name.strip(" \t"), content.strip(" \t")
    if not sep or not name:
        raise ValueError("--header must look like 'Name: value', e.g. 'Authorization: Bearer TOKEN'")
    if _TOKEN.fullmatch(name) is None:
        raise ValueError(
            "--header: the name before ':' must be an HTTP token (letters, digits and "
            "!#$%&'*+-.^_`|~, no spaces or control characters), e.g. 'Authorization: Bearer TOKEN'"
        )
    if name.lower() in PROXY_SET_HEADERS:
        raise ValueError(f"--header {name}: the proxy sets this header itself; remove the option")
    if not valid_field_value(content):
        raise ValueError(
            f"--header {name}: the value may hold only printable ASCII, spaces and tabs "
            "(no CR, LF, NUL or other control characters, no non-ASCII text)"
        )
    return name, content


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
    return version is not None and version >= FIRST_STATELESS_VERSION and valid_protocol_version(version)


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
    """The mirrored headers for one message: empty for responses and batches.

    UnsafeHeader if the request names a protocol version that is not a revision date.
    """
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
        if not valid_protocol_version(version):
            raise UnsafeHeader(f'params._meta["{PROTOCOL_VERSION_META_KEY}"] must be {PROTOCOL_VERSION_RULE}')
        headers["mcp-protocol-version"] = version
    return headers


def mismatch(sent: dict[str, str], message: Any) -> str | None:
    """The first of `sent` (lower-case names) that disagrees with the body, or None.

    A header that is absent is not a mismatch, except `Mcp-Name` when `Mcp-Method` is sent for a
    method that names something: a request must not be able to hide its target from a gateway.
    """
    try:
        expected = request_headers(message)
    except UnsafeHeader:
        return "mcp-protocol-version"
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
