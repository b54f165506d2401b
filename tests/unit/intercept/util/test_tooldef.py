"""intercept.util.tooldef: the canonical form is RFC 8785's; the hash is the one docs/REGISTRY.md gives."""

from __future__ import annotations

import hashlib
import json

import pytest

from intercept.util.tooldef import (
    DEFINITION_HASH_RE,
    DefinitionError,
    canonical_definition,
    definition_hash,
)

ECHO = {
    "name": "echo",
    "description": "Echoes back the input",
    "inputSchema": {
        "type": "object",
        "properties": {"message": {"type": "string", "description": "Message to echo"}},
        "required": ["message"],
    },
}
ECHO_CANONICAL = (
    '{"annotations":{},"description":"Echoes back the input","inputSchema":{"properties":{"message":'
    '{"description":"Message to echo","type":"string"}},"required":["message"],"type":"object"},'
    '"name":"echo"}'
)
ECHO_HASH = "sha256:072aea2768608ce03a54f0446caee6fc5cc1895ad29bcfb7733a46acbce9bf7f"
"""The worked example in docs/REGISTRY.md; `printf '%s' '<canonical>' | sha256sum` gives the same."""


def _in_annotations(value: object) -> bytes:
    """The canonical bytes of `value` as the JCS serialiser writes it, cut out of a definition."""
    raw = canonical_definition({"name": "t", "annotations": {"v": value}})
    return raw[len(b'{"annotations":{"v":') : raw.index(b'},"description"')]


def test_the_documented_example() -> None:
    assert canonical_definition(ECHO).decode() == ECHO_CANONICAL
    assert definition_hash(ECHO) == ECHO_HASH
    assert "sha256:" + hashlib.sha256(ECHO_CANONICAL.encode()).hexdigest() == ECHO_HASH


def test_rfc8785_section_3_2_2_example() -> None:
    # The input and output of RFC 8785, section 3.2.2 ("Sorting of Object Properties" aside).
    parsed = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        '"literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert _in_annotations(parsed).decode() == expected


def test_rfc8785_section_3_2_3_sorts_keys_by_utf16_code_units() -> None:
    parsed = json.loads(
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
        '"1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        '"\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    order = list(json.loads(_in_annotations(parsed)).values())
    assert order == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_absent_fields_count_as_their_documented_defaults() -> None:
    bare = {"name": "ping"}
    spelled_out = {"name": "ping", "description": "", "inputSchema": {"type": "object"}, "annotations": {}}
    assert definition_hash(bare) == definition_hash(spelled_out)
    assert definition_hash({"name": "ping", "description": None}) == definition_hash(bare)


def test_only_the_four_fields_count() -> None:
    extra = {**ECHO, "title": "Echo", "outputSchema": {"type": "object"}, "_meta": {"x": 1}}
    assert definition_hash(extra) == ECHO_HASH


@pytest.mark.parametrize(
    "change",
    [
        {"name": "echo2"},
        {"description": "Echoes back the input."},
        {"inputSchema": {"type": "object"}},
        {"annotations": {"readOnlyHint": True}},
    ],
)
def test_each_field_changes_the_hash(change: dict[str, object]) -> None:
    assert definition_hash({**ECHO, **change}) != ECHO_HASH


def test_key_order_and_whitespace_do_not_matter() -> None:
    reordered = json.loads(json.dumps(ECHO, indent=4, sort_keys=True))
    reordered["inputSchema"] = dict(reversed(list(reordered["inputSchema"].items())))
    assert definition_hash(reordered) == ECHO_HASH


def test_numbers_are_written_as_ecmascript_doubles() -> None:
    assert _in_annotations(1.0) == b"1"
    assert _in_annotations(1e21) == b"1e+21"
    assert _in_annotations(0.000001) == b"0.000001"
    assert _in_annotations(1e-7) == b"1e-7"
    # A 64-bit schema bound becomes the double JSON.parse would give it, not an error.
    assert _in_annotations(9223372036854775807) == b"9223372036854776000"


def test_the_form_is_the_hash_format() -> None:
    assert DEFINITION_HASH_RE.match(definition_hash(ECHO))
    assert not DEFINITION_HASH_RE.match(ECHO_HASH.upper())


@pytest.mark.parametrize(
    "tool",
    [
        {},
        {"name": 3},
        {"name": "t", "annotations": {"x": float("nan")}},
        {"name": "t", "inputSchema": {1: 2}},
    ],
)
def test_definitions_without_a_canonical_form_are_refused(tool: dict[object, object]) -> None:
    with pytest.raises(DefinitionError):
        definition_hash(tool)  # type: ignore[arg-type]


def test_null_annotations_are_no_annotations() -> None:
    with_nulls = {**ECHO, "annotations": {"title": None, "readOnlyHint": None}}
    assert definition_hash(with_nulls) == ECHO_HASH
    assert definition_hash({**ECHO, "annotations": {"readOnlyHint": False}}) != ECHO_HASH
