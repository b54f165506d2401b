"""A tool definition's hash: SHA-256 over the RFC 8785 (JCS) form of what a server says a tool is.

The registry stores it per tool and the proxy can pin a tool to it, so both must compute it the same
way from a tool as an MCP server sends it in `tools/list`. docs/REGISTRY.md ("Tool definition hash")
states the form exactly, for other implementations.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import rfc8785

HASH_PREFIX = "sha256:"
DEFINITION_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
DEFAULT_INPUT_SCHEMA: dict[str, Any] = {"type": "object"}
"""What an absent inputSchema counts as: the smallest schema MCP allows, and the registry's default."""

_SAFE_INTEGER = 2**53 - 1


class DefinitionError(ValueError):
    """A tool definition that has no canonical form (a name that is not a string, NaN, a non-string key)."""


def canonical_definition(tool: Mapping[str, Any]) -> bytes:
    """The JCS bytes of a tool's `name`, `description`, `inputSchema` and `annotations`.

    An absent or null description counts as "", absent annotations as {}, an absent inputSchema as
    {"type": "object"}; an annotation whose value is null is left out (a null hint is no hint, and
    the MCP SDK drops it). Other keys (`title`, `outputSchema`, `_meta`, ...) are not part of it.
    """
    name = tool.get("name")
    if not isinstance(name, str):
        raise DefinitionError("a tool definition needs a string name")
    description = tool.get("description")
    schema = tool.get("inputSchema")
    annotations = tool.get("annotations")
    document = {
        "name": name,
        "description": "" if description is None else description,
        "inputSchema": DEFAULT_INPUT_SCHEMA if schema is None else schema,
        "annotations": _given(annotations),
    }
    try:
        return rfc8785.dumps(_as_doubles(document))
    except rfc8785.CanonicalizationError as exc:
        raise DefinitionError(f"the tool definition has no canonical JSON form: {exc}") from None


def definition_hash(tool: Mapping[str, Any]) -> str:
    """`sha256:<64 lowercase hex>` of `canonical_definition(tool)`."""
    return HASH_PREFIX + hashlib.sha256(canonical_definition(tool)).hexdigest()


DEFINITION_FIELDS = ("name", "description", "inputSchema", "annotations")


def field_hashes(tool: Mapping[str, Any]) -> dict[str, str]:
    """`sha256:<hex>` of each hashed field's canonical JSON, so two definitions can be told apart field
    by field without keeping their (untrusted, possibly large) text."""
    document = json.loads(canonical_definition(tool))
    return {
        key: HASH_PREFIX + hashlib.sha256(rfc8785.dumps(_as_doubles(document[key]))).hexdigest()
        for key in DEFINITION_FIELDS
    }


def _given(annotations: Any) -> Any:
    if annotations is None:
        return {}
    if isinstance(annotations, Mapping):
        return {key: value for key, value in annotations.items() if value is not None}
    return annotations


def _as_doubles(value: Any) -> Any:
    """Integers beyond ±(2^53-1) as the nearest double, which is what JSON.parse gives JCS to hash.

    JSON Schemas carry 64-bit bounds (9223372036854775807); RFC 8785 numbers are IEEE 754 doubles.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) > _SAFE_INTEGER else value
    if isinstance(value, Mapping):
        return {key: _as_doubles(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_doubles(item) for item in value]
    return value
