"""intercept.util.safeyaml: what a hostile or mistaken YAML file can hide is refused, with a line number."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from intercept.util import safeyaml
from intercept.util.safeyaml import YamlInputError, load_yaml_text, read_yaml_file


def test_plain_document_loads() -> None:
    assert load_yaml_text("a: 1\nb: [x, y]\n") == {"a": 1, "b": ["x", "y"]}


def test_anchor_without_alias_is_harmless() -> None:
    assert load_yaml_text("a: &x 1\n") == {"a": 1}


def test_alias_is_refused_with_line() -> None:
    with pytest.raises(YamlInputError, match=r"line 1: this value is reused through an alias .* not allowed"):
        load_yaml_text("a: &x [1, 2]\nb: *x\n")


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(YamlInputError, match="aliases"):
        load_yaml_text("\n".join(lines) + "\n")


def test_merge_key_is_refused() -> None:
    with pytest.raises(YamlInputError, match=r"line 3: YAML merge keys"):
        load_yaml_text("base: {x: 1}\nchild:\n  <<: {x: 2}\n  y: 3\n")


def test_duplicate_key_is_refused_naming_both_lines() -> None:
    with pytest.raises(YamlInputError, match=r"line 3: duplicate key 'rate_limit' \(first defined on line 2"):
        load_yaml_text("rule:\n  rate_limit: 1/minute\n  rate_limit: 100/minute\n")


def test_same_key_in_different_mappings_is_fine() -> None:
    assert load_yaml_text("a: {k: 1}\nb: {k: 2}\n") == {"a": {"k": 1}, "b": {"k": 2}}


def test_complex_mapping_key_is_refused() -> None:
    with pytest.raises(YamlInputError, match="mapping key must be a plain value"):
        load_yaml_text("? [a, b]\n: 1\n")


def test_syntax_error_names_line_and_column() -> None:
    with pytest.raises(YamlInputError, match=r"line 2, column \d+: not valid YAML"):
        load_yaml_text("a: 1\n b: [\n")


def test_two_documents_are_refused() -> None:
    with pytest.raises(YamlInputError, match="not valid YAML"):
        load_yaml_text("a: 1\n---\nb: 2\n")


def test_python_tags_are_refused() -> None:
    with pytest.raises(YamlInputError, match="not valid YAML"):
        load_yaml_text("a: !!python/object/apply:os.system ['true']\n")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(YamlInputError):
        load_yaml_text("[" * 100_000 + "]" * 100_000)


def test_file_over_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * 2000 + b"\n")
    with pytest.raises(YamlInputError, match=r"over the 1,000-byte limit"):
        read_yaml_file(path, 1000)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("description: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(YamlInputError, match=r"not UTF-8 \(byte 16\)"):
        read_yaml_file(path, 1000)


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(YamlInputError, match="cannot read file: No such file or directory"):
        read_yaml_file(tmp_path / "nope.yaml", 1000)


def test_directory_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(YamlInputError, match="cannot read file: it is a directory"):
        read_yaml_file(tmp_path, 1000)


def test_pipe_is_read_with_the_size_cap(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "policy.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as handle:
            handle.write(b"a: " + b"x" * 5000 + b"\n")

    # 5 KB fits in the pipe buffer, so the writer finishes whether or not the reader stops early.
    writer = threading.Thread(target=feed)
    writer.start()
    try:
        with pytest.raises(YamlInputError, match=r"file is over the 1,000-byte limit"):
            read_yaml_file(fifo, 1000)
    finally:
        writer.join(timeout=10)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x7f", "\ufffe"])
def test_control_character_is_a_one_line_error_with_line(char: str) -> None:
    with pytest.raises(YamlInputError) as caught:
        load_yaml_text(f"a: 1\nb: x{char}\n")
    message = str(caught.value)
    assert message.startswith(f"line 2: not valid YAML: character U+{ord(char):04X} is not allowed")
    assert "\n" not in message


def test_uses_the_libyaml_c_loader_when_pyyaml_has_it() -> None:
    import yaml

    from intercept.util import safeyaml

    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML build has no libyaml")
    assert issubclass(safeyaml._StrictLoader, yaml.CSafeLoader)


class _GeneralLoader(safeyaml._StrictLoader):
    """The strict loader without its one-pass builder: SafeConstructor's general path only."""

    get_single_data = yaml.constructor.BaseConstructor.get_single_data


def _general_load(text: str) -> object:
    try:
        return ("value", yaml.load(text, Loader=_GeneralLoader))
    except YamlInputError as exc:
        return ("error", str(exc))
    except yaml.YAMLError as exc:
        return ("yaml error", type(exc).__name__)


def _fast_load(text: str) -> object:
    try:
        return ("value", yaml.load(text, Loader=safeyaml._StrictLoader))
    except YamlInputError as exc:
        return ("error", str(exc))
    except yaml.YAMLError as exc:
        return ("yaml error", type(exc).__name__)


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "on", "0x1f", "1_000", "2024-01-02", "2024-01-02T03:04:05Z", "~", ".inf", "="]),
)
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_documents, st.booleans())
def test_one_pass_builder_equals_the_general_constructor(document: object, flow: bool) -> None:
    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    assert _fast_load(text) == _general_load(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "when: 2024-01-02 03:04:05\nday: 2024-01-02\n",
        "blob: !!binary aGVsbG8=\n",
        "=: value-key\n",
        "s: !!set {a, b}\n",
        "o: !!omap [{a: 1}, {b: 2}]\n",
        "p: !!pairs [{a: 1}, {a: 2}]\n",
        "m: !!map {a: 1}\nq: !!seq [1]\nt: !!str 12\n",
        "a: &x 1\nb: *x\n",
        "a: &x {k: 1}\nb: [*x]\n",
        "s: !!set {a, b}\nx: &y 1\nz: *y\n",
        "a: 1\na: 2\n",
        "1: a\n'1': b\n01: c\n",
        "a: {<<: {x: 1}}\n",
        "? [a]\n: 1\n",
        "a: !!python/name:os.system\n",
        "a: !custom 1\n",
    ],
)
def test_one_pass_builder_matches_the_general_constructor_on_unusual_documents(text: str) -> None:
    assert _fast_load(text) == _general_load(text)
