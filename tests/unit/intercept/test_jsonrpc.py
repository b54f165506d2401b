"""Strict JSON-RPC parsing: every ambiguous or malformed message is an error, never a guess."""

from __future__ import annotations

import pytest

from intercept import jsonrpc
from intercept.jsonrpc import MessageError


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}', "duplicate key"),
        (b'{"jsonrpc":"2.0","params":{"name":"x","name":"y"}}', "duplicate key"),
        (b'{"a":"\xff"}', "not valid UTF-8"),
        (b'{"a":"\xed\xa0\x80"}', "not valid UTF-8"),  # a surrogate encoded as UTF-8 bytes
        (b'{"a":NaN}', "not valid JSON"),
        (b'{"a":1e999}', "out of range"),
        (b'{"a":', "not valid JSON"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_parse_rejects(raw: bytes, fragment: str) -> None:
    with pytest.raises(MessageError) as caught:
        jsonrpc.parse(raw)
    assert caught.value.code == jsonrpc.PARSE_ERROR
    assert fragment in caught.value.message


def test_lone_surrogate_escape_is_caught_when_re_serialised() -> None:
    parsed = jsonrpc.parse(b'{"a":"\\ud800"}')
    with pytest.raises(MessageError, match="lone surrogate"):
        jsonrpc.encode(parsed)
    assert jsonrpc.encode(jsonrpc.parse(b'{"a":"\\ud83d\\ude00"}')) == '{"a":"😀"}'.encode()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ([], jsonrpc.INVALID_REQUEST),
        ({"id": 1, "method": "x"}, jsonrpc.INVALID_REQUEST),
        ({"jsonrpc": "1.0", "id": 1, "method": "x"}, jsonrpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, jsonrpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": True, "method": "x"}, jsonrpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "x"}, jsonrpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": None, "method": "x"}, jsonrpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1]}, jsonrpc.INVALID_PARAMS),
        ({"jsonrpc": "2.0", "id": 1, "method": "x", "result": {}}, jsonrpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}}, jsonrpc.INVALID_REQUEST),
        ({"jsonrpc": "2.0"}, jsonrpc.INVALID_REQUEST),
    ],
)
def test_classify_rejects_malformed_envelopes(message: object, code: int) -> None:
    with pytest.raises(MessageError) as caught:
        jsonrpc.classify(message)
    assert caught.value.code == code


def test_classify_kinds() -> None:
    assert jsonrpc.classify({"jsonrpc": "2.0", "id": "a", "method": "m"}).kind == "request"
    assert jsonrpc.classify({"jsonrpc": "2.0", "method": "m"}).kind == "notification"
    response = jsonrpc.classify({"jsonrpc": "2.0", "id": 3, "result": {}})
    assert (response.kind, response.id) == ("response", 3)
    assert jsonrpc.classify({"jsonrpc": "2.0", "id": None, "error": {"code": 1}}).kind == "response"


def test_encode_error_falls_back_to_null_id_when_the_id_cannot_be_encoded() -> None:
    assert (
        jsonrpc.encode_error(-1, "x", "\ud800")
        == b'{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"x"}}'
    )
