"""Cheap JSON for the HTTP transports' bookkeeping: reading ids and methods to route a message.

The router parses every message strictly (duplicate keys, UTF-8, finite numbers) before it
decides anything; the transports only look at messages the router produced or is about to
check, to find their ids, methods and progress tokens. msgspec reads those several times
faster than the standard library, which matters on the per-call path
(BENCHMARKS.md, "Streamable HTTP and Redis").
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

import msgspec

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def loads(data: bytes | str) -> Any:
    """`json.loads` (ValueError if not JSON), faster on the usual input."""
    try:
        return _decoder.decode(data)
    except (msgspec.MsgspecError, RecursionError):
        return json.loads(data)  # the standard library's answer (or error) for what msgspec refuses


def compact(value: Any) -> bytes | None:
    """`value` as compact JSON in msgspec's form (the router's canonical form); None if it cannot be."""
    try:
        return _encoder.encode(value)
    except (msgspec.MsgspecError, TypeError, ValueError, OverflowError, RecursionError):
        return None


def id_key(value: Any) -> str:
    """A JSON-RPC id as a dict key: its JSON text, so 1 and "1" differ (as `json.dumps`, but cheap)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    return json.dumps(value)
