"""Strict JSON-RPC parsing: every ambiguous or malformed message is an error, never a guess."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intercept.protocol import jsonrpc
from intercept.protocol.jsonrpc import MessageError


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


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b'{"a":1234567890123e99999}', "number out of range"),
        (b'{"a":"\\q1234567890123"}', "Invalid \\escape at line 1 column 7"),
        (b'{"a":"\\u12Z4567890123"}', "Invalid \\uXXXX escape at line 1 column 8"),
        (b'{"1234567890123":1,"1234567890123":2}', "duplicate key"),
        (b'{"a":"1234567890123\x01"}', "Invalid control character at line 1 column 20"),
        (b'{"a":1234567890123x}', "Expecting ',' delimiter at line 1 column 19"),
        (b'{"a":1}1234567890123', "Extra data at line 1 column 8"),
        (b'{"a":' + b"1234567890123" * 400 + b"}", "number with too many digits"),
        (b'{"1234567890123":NaN}', "NaN and Infinity are not JSON"),
    ],
)
def test_parse_errors_say_what_and_where_but_never_quote_the_message(raw: bytes, kind: str) -> None:
    with pytest.raises(MessageError) as caught:
        jsonrpc.parse(raw)
    assert kind in caught.value.message
    assert "1234567890123" not in caught.value.message and "123456" not in caught.value.message


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


def test_parse_canonical_flags_only_bytes_equal_to_the_re_serialisation() -> None:
    compact = b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"n":1.5}}}'
    value, canonical = jsonrpc.parse_canonical(compact)
    assert canonical and jsonrpc.encode(value) == compact
    spaced = b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call"}'
    value, canonical = jsonrpc.parse_canonical(spaced)
    assert not canonical and value == {"jsonrpc": "2.0", "id": 7, "method": "tools/call"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":1}',  # the fast decoder keeps one "a"; re-encoding is shorter, so strict parsing runs
        b'{"params":{"name":"echo","name":"echo"}}',
        b'[{"id":1,"id":1}]',
    ],
)
def test_parse_canonical_still_rejects_duplicate_keys_that_a_fast_decoder_merges(raw: bytes) -> None:
    with pytest.raises(MessageError, match="duplicate key"):
        jsonrpc.parse_canonical(raw)


def test_parse_canonical_keeps_integers_beyond_64_bits_exact() -> None:
    raw = b'{"id":123456789012345678901234567890}'
    value, canonical = jsonrpc.parse_canonical(raw)
    assert canonical and value["id"] == 123456789012345678901234567890


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([(",", ":"), (", ", ": ")]), st.booleans())
def test_parse_canonical_agrees_with_the_strict_parser(
    value: object, separators: tuple[str, str], ascii_only: bool
) -> None:
    raw = json.dumps(value, separators=separators, ensure_ascii=ascii_only).encode()
    try:
        expected = jsonrpc.parse_strict(raw)
    except MessageError as strict_error:
        with pytest.raises(MessageError) as fast_error:
            jsonrpc.parse_canonical(raw)
        assert fast_error.value.message == strict_error.message
        return
    parsed, canonical = jsonrpc.parse_canonical(raw)
    assert parsed == expected and type(parsed) is type(expected)
    if canonical:
        assert jsonrpc.encode(parsed) == raw


message_ids = st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=40))


@given(message_ids, st.text(max_size=60), st.booleans())
def test_the_id_of_a_dropped_message_is_found_where_the_sdks_write_it(
    message_id: int | str, text: str, id_last: bool
) -> None:
    payload = text + "z" * 9000 + text  # longer than both edges together
    if id_last:  # the TypeScript SDK's answers: result first, then jsonrpc and id
        message: dict[str, Any] = {"result": {"text": payload}, "jsonrpc": "2.0", "id": message_id}
    else:  # requests: jsonrpc, id, method, params
        message = {"jsonrpc": "2.0", "id": message_id, "method": "tools/call", "params": {"x": payload}}
    raw = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    assert jsonrpc.id_from_edges(raw[:4096], raw[-4096:]) == message_id


@pytest.mark.parametrize(
    ("head", "tail"),
    [
        (b'{"result":{"text":"', b'"},"meta":{"id":5}}'),  # an id, but not the message's own
        (b'{"method":"x","params":{"id":5,', b'"}}'),
        (b'{"id":"\\ud800",', b""),  # could not be written back
        (b'{"id":true,', b""),
        (b"", b""),
    ],
)
def test_no_id_is_made_up_for_a_dropped_message(head: bytes, tail: bytes) -> None:
    assert jsonrpc.id_from_edges(head, tail) is None


LOOK_ALIKES = [
    ("tool\u017f/call", "tools/call"),  # LATIN SMALL LETTER LONG S folds to s
    ("\ufefftools/call", "tools/call"),  # a byte order mark in front
    ("tools/call\x00", "tools/call"),
    ("tools/\u200bcall", "tools/call"),  # a zero-width space inside
    ("tools/call\u00ad", "tools/call"),  # a soft hyphen
    ("Tools/Call", "tools/call"),
    ("tools/call ", "tools/call"),
    ("\ttools/call\r\n", "tools/call"),
    ("\uff54\uff4f\uff4f\uff4c\uff53\uff0f\uff43\uff41\uff4c\uff4c", "tools/call"),  # fullwidth
    ("tools/ca\u0301ll", "tools/call"),  # a combining accent
    ("tools/\u3164call", "tools/call"),  # a Hangul filler (renders as nothing)
    ("TOOLS/LIST", "tools/list"),
    ("tools/list\u2028", "tools/list"),
    ("tool\u017f/li\u017ft", "tools/list"),
    ("tools/\u2060list", "tools/list"),  # a word joiner
]


@pytest.mark.parametrize(("method", "policed"), LOOK_ALIKES)
def test_look_alikes_of_policed_methods_are_recognised(method: str, policed: str) -> None:
    assert jsonrpc.imitated_method(method) == policed


@pytest.mark.parametrize(
    "method", [*sorted(jsonrpc.KNOWN_METHODS), "tools/calls", "tools/call/x", "x-vendor/ping", "tool/call"]
)
def test_exact_and_unrelated_methods_imitate_nothing(method: str) -> None:
    assert jsonrpc.imitated_method(method) is None


_invisible = st.sampled_from(["\x00", "\x1f", "\x7f", " ", "\u00a0", "\u200b", "\u200d", "\ufeff", "\u2060"])


@given(
    policed=st.sampled_from(sorted(jsonrpc.POLICED_METHODS)),
    inserts=st.lists(st.tuples(st.integers(0, 10), _invisible), min_size=0, max_size=4),
    upper=st.sets(st.integers(0, 9)),
)
@settings(max_examples=300)
def test_a_policed_method_with_any_case_or_invisible_characters_is_a_look_alike(
    policed: str, inserts: list[tuple[int, str]], upper: set[int]
) -> None:
    chars = [c.upper() if i in upper else c for i, c in enumerate(policed)]
    for position, char in inserts:
        chars.insert(min(position, len(chars)), char)
    method = "".join(chars)
    assert jsonrpc.imitated_method(method) == (None if method == policed else policed)
