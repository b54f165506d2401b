"""YAML loading that refuses what a hostile or mistaken file could hide: aliases, duplicate keys, size."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, cast

import yaml

try:
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class YamlInputError(Exception):
    """A YAML document that cannot be accepted; the message names the line and the fix."""


_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "timestamp", "binary")
)
"""Tags whose SafeConstructor constructor is a plain function of one scalar node."""


class _UnusualTag(Exception):
    """The document uses a tag only the general constructor handles (e.g. !!set, !!omap, '=')."""


def _alias_error(node: yaml.Node) -> YamlInputError:
    return YamlInputError(
        f"line {node.start_mark.line + 1}: this value is reused through an alias (*name); YAML aliases "
        "are not allowed, write the value out in full"
    )


def _check_keys(node: yaml.MappingNode) -> None:
    seen: dict[tuple[str, str], int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            raise YamlInputError(
                f"line {key_node.start_mark.line + 1}: YAML merge keys (<<) are not allowed; "
                "write the keys out in full"
            )
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlInputError(f"line {key_node.start_mark.line + 1}: a mapping key must be a plain value")
        key = (key_node.tag, key_node.value)
        if key in seen:
            raise YamlInputError(
                f"line {key_node.start_mark.line + 1}: duplicate key {key_node.value!r} "
                f"(first defined on line {seen[key]}); keep only one"
            )
        seen[key] = key_node.start_mark.line + 1


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that rejects aliases (alias bombs) and duplicate mapping keys (silent overrides)."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        try:
            return self._construct_plain(node)
        except _UnusualTag:
            return self.construct_document(node)

    def _construct_plain(self, root: yaml.Node) -> Any:
        """Build a document of maps, sequences and plain scalars in one pass.

        SafeConstructor's general machinery costs several Python calls a node and dominated the
        registry's load time. This builds the same values, with the same checks in the same order
        (a node met twice is an alias); a tag it does not know sends the document to the general
        constructor instead.
        """
        seen: set[int] = set()
        scalar_constructors = self.yaml_constructors
        scalar, mapping, sequence = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode

        def build(node: yaml.Node) -> Any:
            if id(node) in seen:
                raise _alias_error(node)
            seen.add(id(node))
            kind, tag = type(node), node.tag
            if kind is scalar:
                if tag == _STR_TAG:
                    return node.value
                if tag in _SCALAR_TAGS:
                    return scalar_constructors[tag](self, node)
            elif kind is mapping and tag == _MAP_TAG:
                _check_keys(cast(yaml.MappingNode, node))
                result: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = build(key_node)
                    result[key] = build(value_node)
                return result
            elif kind is sequence and tag == _SEQ_TAG:
                return [build(child) for child in node.value]
            raise _UnusualTag

        return build(root)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects or node in self.recursive_objects:
            raise _alias_error(node)
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        _check_keys(node)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


# SafeConstructor's own map constructor flattens merge keys before construct_mapping
# runs; routing maps straight to construct_mapping lets the refusal above see them.
_StrictLoader.add_constructor(
    "tag:yaml.org,2002:map",
    lambda loader, node: loader.construct_mapping(node, deep=True),
)


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document, raising YamlInputError with a line number on any problem."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # _StrictLoader derives from SafeLoader
    except YamlInputError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise YamlInputError(f"{where}not valid YAML: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character or "\0")
        raise YamlInputError(
            f"line {line}: not valid YAML: character U+{char:04X} is not allowed ({exc.reason}); "
            "remove it or write it as an escape in a double-quoted string"
        ) from None
    except yaml.YAMLError as exc:
        flat = " ".join(str(exc).split())
        raise YamlInputError(f"not valid YAML: {flat}") from None
    except RecursionError:
        raise YamlInputError("YAML nesting is too deep") from None


def read_yaml_file(path: Path, max_bytes: int) -> Any:
    """Read and parse a YAML file no larger than max_bytes; errors never include a traceback."""
    too_big = f"over the {max_bytes:,}-byte limit; split it or trim it"
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise YamlInputError("cannot read file: it is a directory")
        if info.st_size > max_bytes:
            raise YamlInputError(f"file is {info.st_size:,} bytes, {too_big}")
        # Pipes and special files report no size, so the read itself is capped too.
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise YamlInputError(f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise YamlInputError(f"file is {too_big}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlInputError(f"file is not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    return load_yaml_text(text)
