"""Strict JSON-RPC 2.0 parsing and serialisation for the proxy: one meaning per message, or an error.

A message the proxy cannot read unambiguously is never forwarded. `parse` rejects invalid
UTF-8, duplicate object keys, `NaN`/`Infinity`, numbers that overflow to infinity, and
nesting too deep for the decoder; `encode` rejects lone surrogates (so a `"\\ud800"` escape
is caught when the evaluated object is re-serialised) and non-finite numbers. The proxy
always forwards `encode(parsed)`, never the raw bytes it received, so what the upstream
reads is exactly what the policy evaluated.

Most peers write compact JSON (the TypeScript SDK's `JSON.stringify`, the Python SDK's
pydantic dump), so `parse_canonical` first decodes with msgspec and re-encodes: when that gives
back exactly the received bytes, those bytes *are* the re-serialised object (and cannot hold a
duplicate key, which re-encoding would have dropped), so they are forwarded as they are. Any
other message takes the strict path above; both paths give the same value for the same input.

`classify` sorts one parsed element into request, notification or response and checks the
envelope (`jsonrpc: "2.0"`, id types, params an object). `imitated_method` tells a look-alike of
a policed method (`tools/call`, `tools/list`) from the real one.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UPSTREAM_ERROR = -32000
"""Server-defined code used when the upstream died or could not be reached."""

POLICED_METHODS = frozenset({"tools/call", "tools/list"})
"""Methods the router acts on: their look-alikes are refused, never forwarded."""

KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "tools/call",
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "sampling/createMessage",
        "roots/list",
        "elicitation/create",
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/message",
        "notifications/resources/updated",
        "notifications/resources/list_changed",
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/roots/list_changed",
        "notifications/elicitation/complete",
        "notifications/tasks/status",
    }
)
"""The MCP methods, spelled exactly: a method in here needs no look-alike check (the hot path)."""

MessageId = str | int
Kind = Literal["request", "notification", "response"]


class MessageError(Exception):
    """A message (or batch element) that must be answered with a JSON-RPC error, not forwarded."""

    def __init__(self, code: int, message: str, message_id: MessageId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_id = message_id


class _DuplicateKey(ValueError):
    pass


class _OutOfRange(ValueError):
    pass


class _Constant(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey
            seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise _Constant


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _OutOfRange
    return value


_JSON_PROBLEMS = (
    "Expecting value",
    "Expecting ',' delimiter",
    "Expecting ':' delimiter",
    "Expecting property name enclosed in double quotes",
    "Unterminated string",
    "Invalid control character",
    "Invalid \\uXXXX escape",
    "Invalid \\escape",
    "Extra data",
    "Illegal trailing comma",
)
"""The decoder's own descriptions, kept word for word; anything after them (the pure-Python decoder
quotes the offending character) is dropped, so an error never repeats message content."""


def _json_problem(exc: json.JSONDecodeError) -> str:
    what = next((p for p in _JSON_PROBLEMS if exc.msg.startswith(p)), "malformed JSON")
    return f"{what} at line {exc.lineno} column {exc.colno}"


_decoder = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_float=_finite_float)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False)


_fast_decoder = msgspec.json.Decoder()
_fast_encoder = msgspec.json.Encoder()


def parse_canonical(raw: bytes) -> tuple[Any, bool]:
    """Decode one message as `parse` does; also say whether `raw` is exactly `encode` of the result.

    When it is, `raw` can be forwarded in place of a fresh encoding: the bytes are the same.
    """
    try:
        value = _fast_decoder.decode(raw)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return parse_strict(raw), False
    if _fast_encoder.encode(value) == raw:
        return value, True
    return parse_strict(raw), False  # may hide a duplicate key that the fast decoder merged


def parse(raw: bytes) -> Any:
    """Decode one message; MessageError(PARSE_ERROR) naming the problem if it is not strict JSON."""
    return parse_canonical(raw)[0]


def parse_strict(raw: bytes) -> Any:
    """`parse` without the compact-input shortcut: every key checked by the standard decoder."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError(PARSE_ERROR, f"message is not valid UTF-8 (byte {exc.start})") from None
    # Error messages say where and what kind of problem, never the text at fault: it may be an
    # argument value (a credential), and errors reach the client, stderr and the logs.
    try:
        return _decoder.decode(text)
    except _DuplicateKey:
        raise MessageError(PARSE_ERROR, "message has a duplicate key in a JSON object") from None
    except _OutOfRange:
        raise MessageError(PARSE_ERROR, "message has a number out of range (it overflows)") from None
    except _Constant:
        raise MessageError(PARSE_ERROR, "message is not valid JSON: NaN and Infinity are not JSON") from None
    except RecursionError:
        raise MessageError(PARSE_ERROR, "message is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise MessageError(PARSE_ERROR, f"message is not valid JSON: {_json_problem(exc)}") from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise MessageError(PARSE_ERROR, "message has a number with too many digits") from None


def encode(message: Any) -> bytes:
    """Serialise compactly as UTF-8; MessageError if it holds lone surrogates or non-finite numbers."""
    try:
        return _encoder.encode(message).encode("utf-8")
    except UnicodeEncodeError:
        raise MessageError(PARSE_ERROR, "message contains a lone surrogate (invalid Unicode)") from None
    except ValueError:
        raise MessageError(PARSE_ERROR, "message cannot be serialised: a number is not finite") from None
    except RecursionError:
        raise MessageError(PARSE_ERROR, "message cannot be serialised: it is nested too deeply") from None


def valid_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


@dataclass(slots=True)
class Envelope:
    """One classified message: its kind, id (requests and responses) and method (requests, notifications)."""

    obj: dict[str, Any]
    kind: Kind
    id: MessageId | None
    method: str | None


def classify(element: Any) -> Envelope:
    """Check the JSON-RPC envelope of one message; MessageError(INVALID_REQUEST) if it is malformed."""
    if not isinstance(element, dict):
        raise MessageError(INVALID_REQUEST, "a JSON-RPC message must be an object")
    raw_id = element.get("id")
    message_id = raw_id if valid_id(raw_id) else None
    if element.get("jsonrpc") != "2.0":
        raise MessageError(INVALID_REQUEST, 'jsonrpc must be "2.0"', message_id)
    if "method" in element:
        method = element["method"]
        if not isinstance(method, str):
            raise MessageError(INVALID_REQUEST, "method must be a string", message_id)
        if "result" in element or "error" in element:
            raise MessageError(INVALID_REQUEST, "a request cannot carry result or error", message_id)
        if "params" in element and not isinstance(element["params"], dict):
            raise MessageError(INVALID_PARAMS, "params must be an object", message_id)
        if "id" not in element:
            return Envelope(element, "notification", None, method)
        if message_id is None:
            raise MessageError(INVALID_REQUEST, "id must be a string or an integer", None)
        return Envelope(element, "request", message_id, method)
    if "id" in element and (("result" in element) != ("error" in element)):
        if message_id is None and raw_id is not None:
            raise MessageError(INVALID_REQUEST, "id must be a string or an integer", None)
        return Envelope(element, "response", message_id, None)
    raise MessageError(INVALID_REQUEST, "not a request, notification or response", message_id)


_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
"""Hangul fillers: letters by category, but default-ignorable (rendered as nothing)."""


def _folded(method: str) -> str:
    """`method` as a lenient server might read it: compatibility-decomposed and case-folded, without
    whitespace, control, format, combining or other invisible characters anywhere in it."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", method).casefold())
    return "".join(
        c
        for c in text
        if not c.isspace()
        and c not in _INVISIBLE_LETTERS
        and unicodedata.category(c) not in _INVISIBLE_CATEGORIES
    )


def imitated_method(method: str) -> str | None:
    """The policed method that `method` imitates without being it byte for byte, else None.

    `tool\u017f/call`, `Tools/List`, `\ufefftools/call` or `tools/call\x00` may each reach a
    lenient server's `tools/call` or `tools/list` handler without the router having checked it.
    Only methods outside `KNOWN_METHODS` are normalised, so the usual message costs one set lookup.
    """
    if method in KNOWN_METHODS:
        return None
    folded = _folded(method)
    return folded if folded in POLICED_METHODS else None


def error_object(code: int, message: str, message_id: MessageId | None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "error": {"code": code, "message": message}}


def result_object(message_id: MessageId, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": result}


def encode_error(code: int, message: str, message_id: MessageId | None) -> bytes:
    """An error response; falls back to `id: null` if the id itself cannot be encoded."""
    try:
        return encode(error_object(code, message, message_id))
    except MessageError:
        return encode(error_object(code, message, None))


_ID_VALUE = rb'(-?\d{1,19}|"(?:[^"\\\x00-\x1f]|\\.){0,256}")'
_LEADING_ID = re.compile(
    rb'\A\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*' + _ID_VALUE + rb"\s*[,}]"
)
_TRAILING_ID = re.compile(
    rb'[,{]\s*"id"\s*:\s*' + _ID_VALUE + rb'\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?\}\s*\Z'
)


def id_from_edges(head: bytes, tail: bytes) -> MessageId | None:
    """The id of a message known only by its first and last bytes (one dropped for its size).

    Best effort, for answering the request a dropped message belongs to: an id found where
    the SDKs write it, right after the opening brace (optionally after `"jsonrpc":"2.0"`) or
    as the last member. It gives the sender no new power: a peer can always send an error or
    a message for any id it likes. None when neither edge shows one.
    """
    for pattern, edge in ((_LEADING_ID, head), (_TRAILING_ID, tail)):
        found = pattern.search(edge)
        if found is None:
            continue
        try:
            value = json.loads(found.group(1))
            if isinstance(value, str):
                value.encode("utf-8")  # a lone surrogate could not be written back in an error
        except ValueError:
            continue
        if valid_id(value):
            return value  # type: ignore[no-any-return]
    return None
