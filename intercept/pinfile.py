"""Write `pin:` lines into a policy file in place, every other byte kept (`intercept pin`), and compare
pins with a server's tools (`intercept pin --check`).

The edit is line-based, not a YAML round trip: the file is read with the policy loader first (so it
is a valid policy), then the block-style `tools:` mapping is walked by indentation. A tool entry's
existing `pin:` line is replaced, or a new one is inserted right after the tool's key line, at the
indentation of the entry's other keys. Comments, blank lines, ordering, quoting and every other key
stay byte for byte. Anything the walk cannot edit safely (flow style `tools: {...}`, an entry written
on one line, a `pin:` spread over lines) is an error naming the tool, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from intercept.policy import WILDCARD, Policy, load_policy_text, pin_line, yaml_quoted
from intercept.util.errors import InputError, LocatedError
from intercept.util.safeyaml import YamlInputError, load_yaml_text

_TOOLS_LINE = re.compile(r"^tools:[ \t]*(#.*)?$")
_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[^\s#][^#]*?)[ \t]*:[ \t]*(?P<rest>#.*)?$")
_PIN_LINE = re.compile(r"^(?P<indent> *)pin[ \t]*:[ \t]*(?P<value>[^#\s][^#]*?)?[ \t]*(#.*)?$")


@dataclass
class PinReport:
    """What a comparison of a policy's tools with a server's found."""

    changed: list[str] = field(default_factory=list)
    """Pinned tools whose current hash differs from the pin."""
    added: list[str] = field(default_factory=list)
    """Tools on the server that the policy neither lists under `tools` nor hides."""
    removed: list[str] = field(default_factory=list)
    """Pinned tools the server does not list."""
    pinned: list[str] = field(default_factory=list)
    """Tools whose pin `write_pins` set or changed."""

    @property
    def drift(self) -> bool:
        return bool(self.changed or self.added or self.removed)


def compare(policy: Policy, current: Mapping[str, str]) -> PinReport:
    """Drift between `policy`'s pins and `current` (tool name to definition hash), sorted by name."""
    pins = policy.pins()
    named = set(policy.tools) | set(policy.hide)
    return PinReport(
        changed=sorted(n for n, pin in pins.items() if n in current and current[n] != pin),
        added=[] if WILDCARD in policy.hide else sorted(n for n in current if n not in named),
        removed=sorted(n for n in pins if n not in current),
    )


def write_pins(text: str, policy: Policy, current: Mapping[str, str], source: str) -> tuple[str, PinReport]:
    """`text` with a pin for every tool the policy lists and the server lists; the report says what
    changed, what the server lists that the policy does not name, and pinned tools the server lacks."""
    report = compare(policy, current)
    wanted = {n: current[n] for n in policy.tools if n != WILDCARD and n in current}
    report.pinned = sorted(n for n, digest in wanted.items() if policy.tools[n].pin != digest)
    if not report.pinned:
        return text, report
    lines = text.splitlines(keepends=True)
    entries = _tool_entries(lines, source)
    edits: list[tuple[int, bool, str]] = []  # (line index, replaces that line, new line)
    for name in report.pinned:
        if name not in entries:
            raise _error(source, None, f"tools.{name} is not written as a block mapping that can be edited")
        key_index, end, indent = entries[name]
        newline = _newline(lines[key_index])
        pin_at = [
            i
            for i in range(key_index + 1, end)
            if (match := _PIN_LINE.match(lines[i].rstrip("\r\n"))) and len(match.group("indent")) == indent
        ]
        if pin_at:
            edits.append((pin_at[0], True, _repinned(lines[pin_at[0]], wanted[name], source, pin_at[0])))
        else:
            edits.append((key_index + 1, False, pin_line(wanted[name], indent) + newline))
    for index, replaces, line in sorted(edits, reverse=True):
        lines[index : index + 1 if replaces else index] = [line]
    edited = "".join(lines)
    # The walk is by indentation, not a YAML parser: the result must read back as exactly the
    # policy with the new pins, or nothing is written.
    expected = {
        name: tool.model_copy(update={"pin": wanted.get(name, tool.pin)})
        for name, tool in policy.tools.items()
    }
    if load_policy_text(edited, source) != policy.model_copy(update={"tools": expected}):
        raise _error(source, None, "the pins could not be written without changing something else")
    return edited, report


def _repinned(line: str, digest: str, source: str, index: int) -> str:
    """`line` (a `pin:` line) with only its value replaced: spacing and a trailing comment stay."""
    match = _PIN_LINE.match(line.rstrip("\r\n"))
    assert match is not None
    if match.group("value") is None:
        raise _error(source, index + 1, "a pin: is not written on one line")
    return line[: match.start("value")] + yaml_quoted(digest) + line[match.end("value") :]


def _tool_entries(lines: Sequence[str], source: str) -> dict[str, tuple[int, int, int]]:
    """Tool name -> (key line index, end of its block, indentation of its keys) in block style."""
    start = next((i for i, line in enumerate(lines) if _TOOLS_LINE.match(line.rstrip("\r\n"))), None)
    if start is None:
        raise _error(source, None, "`tools:` is not a block mapping at the top level")
    entries: dict[str, tuple[int, int, int]] = {}
    tool_indent: int | None = None
    current: tuple[str, int] | None = None
    child_indent: int | None = None
    index = start + 1
    while index < len(lines):
        line = lines[index].rstrip("\r\n")
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        indent = len(line) - len(stripped)
        if indent == 0:
            break
        tool_indent = indent if tool_indent is None else tool_indent
        if indent < tool_indent:
            raise _error(source, index + 1, "the tools mapping is indented unevenly")
        if indent == tool_indent:
            if current is not None:
                entries[current[0]] = (current[1], index, child_indent or tool_indent + 2)
            match = _KEY_LINE.match(line)
            name = _key(match.group("key")) if match else None
            current = (name, index) if name is not None else None
            child_indent = None
        elif child_indent is None:
            child_indent = indent
        index += 1
    if current is not None:
        entries[current[0]] = (current[1], _block_end(lines, index), child_indent or (tool_indent or 2) + 2)
    return entries


def _block_end(lines: Sequence[str], index: int) -> int:
    """Where a block ending at `index` ends once trailing blank and comment lines are left outside it."""
    while index > 0 and (not lines[index - 1].strip() or lines[index - 1].lstrip().startswith("#")):
        index -= 1
    return index


def _key(text: str) -> str | None:
    """A mapping key as YAML reads it (plain or quoted), or None if it is not a plain string key."""
    try:
        loaded = load_yaml_text(f"{text}: 0\n")
    except YamlInputError:
        return None
    if isinstance(loaded, dict) and len(loaded) == 1:
        (key,) = loaded
        return key if isinstance(key, str) else None
    return None


def _newline(line: str) -> str:
    return "\r\n" if line.endswith("\r\n") else "\n"


def _error(source: str, line: int | None, message: str) -> InputError:
    hint = "write tools as a block mapping (one key per line), or add the pin by hand"
    return InputError(source, [LocatedError(f"line {line}" if line else "", message, hint)])
