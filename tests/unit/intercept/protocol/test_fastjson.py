"""fastjson: the same answers as the standard library, faster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from intercept.protocol.fastjson import compact, id_key, loads

IDS = [0, 1, -7, 10**30, "1", "", 'quote " and \\ and é and \ud800', None, True, 1.5, [1, "a"], {"k": 1}]


@pytest.mark.parametrize("value", IDS)
def test_id_key_is_the_json_text_of_the_id(value: Any) -> None:
    assert id_key(value) == json.dumps(value)


def test_one_and_the_string_one_are_different_keys() -> None:
    assert id_key(1) != id_key("1")


@pytest.mark.parametrize(
    "text", [b'{"a":[1,2.5,"x",null,true]}', b"[]", '{"s":"\\u00e9"}', b'{"a": NaN}', b'{"big": 1e400}']
)
def test_loads_agrees_with_the_standard_library(text: bytes | str) -> None:
    assert repr(loads(text)) == repr(json.loads(text))


def test_loads_raises_value_error_on_bad_input() -> None:
    with pytest.raises(ValueError):
        loads(b"{not json")
    with pytest.raises(ValueError):
        loads(b'"\xff"')


def test_compact_gives_msgspec_form_or_none() -> None:
    assert compact({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'.encode()
    assert compact("\ud800") is None  # a lone surrogate cannot be UTF-8
