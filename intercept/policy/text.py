"""Policy YAML output: scalars, rules, tool blocks and whole policies, written by hand.

Hand-written so output is stable, readable and byte-identical everywhere it is published (tool
page snippet, server policy file, `scaffold`); `dump_policy` reads back to an equal policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from intercept.policy.model import CalendarRateLimit, Policy, Rule, SlidingRateLimit

_PLAIN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_./\- ]*")
_RESERVED_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _quoted_char(ch: str) -> str:
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    code = ord(ch)
    # Printable ASCII, and printable non-ASCII that YAML neither rejects nor reads as a line
    # break (U+0085, U+2028, U+2029) or a byte-order mark, is written as itself.
    if 0x20 <= code < 0x7F or (
        code >= 0xA0 and code not in {0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF} and not 0xD800 <= code < 0xE000
    ):
        return ch
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def yaml_quoted(text: str) -> str:
    """A double-quoted YAML string that reads back as exactly `text`, whatever it contains."""
    return '"' + "".join(_quoted_char(ch) for ch in text) + '"'


def yaml_scalar(value: Any) -> str:
    """One scalar in YAML that reads back as the same value and type; plain when that is safe."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return f"{int(value)}.0"
        text = repr(value)
        # YAML 1.1 (PyYAML) reads a float only with a '.' in the mantissa: 1e-07 would be a string.
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent if exponent[0] in '+-' else '+' + exponent}"
        return text
    text = str(value)
    if _PLAIN_RE.fullmatch(text) and text.strip() == text and text.lower() not in _RESERVED_WORDS:
        return text
    return yaml_quoted(text)


def _flow_list(values: Iterable[Any]) -> str:
    return "[" + ", ".join(yaml_scalar(v) for v in values) + "]"


def rule_lines(rule: Rule) -> list[str]:
    """A rule as YAML lines, starting with `- `, without indentation."""
    fields: list[tuple[str, list[str]]] = []
    if rule.name is not None:
        fields.append(("name", [yaml_scalar(rule.name)]))
    fields.append(("action", [rule.action]))
    if rule.mode != "enforce":
        fields.append(("mode", [rule.mode]))
    if rule.reason is not None:
        fields.append(("reason", [yaml_scalar(rule.reason)]))
    if rule.on_deny is not None:
        fields.append(("on_deny", [yaml_scalar(rule.on_deny)]))
    if isinstance(rule.rate_limit, SlidingRateLimit):
        limit = rule.rate_limit
        fields.append(("rate_limit", ["", f"max: {limit.max}", f"window: {limit.window}"]))
    elif isinstance(rule.rate_limit, CalendarRateLimit):
        fields.append(("rate_limit", [yaml_scalar(str(rule.rate_limit))]))
    if rule.conditions:
        lines = [""]
        for cond in rule.conditions:
            lines.append(f"- path: {yaml_scalar(cond.path)}")
            lines.append(f"  op: {cond.op}")
            if cond.value is not None:
                value = _flow_list(cond.value) if isinstance(cond.value, list) else yaml_scalar(cond.value)
                lines.append(f"  value: {value}")
        fields.append(("conditions", lines))
    if rule.state is not None:
        st = rule.state
        lines = ["", f"counter: {yaml_scalar(st.counter)}", f"window: {st.window}"]
        if st.increment != 1:
            lines.append(f"increment: {yaml_scalar(st.increment)}")
        if st.increment_from is not None:
            lines.append(f"increment_from: {yaml_scalar(st.increment_from)}")
        fields.append(("state", lines))
    if rule.validate_ is not None:
        lines = [""]
        if rule.validate_.required_args:
            lines.append("required_args: true")
        if rule.validate_.schema_:
            lines.append("schema: true")
        # `validate:` alone would read back as null; an empty mapping keeps the (empty) block.
        fields.append(("validate", lines if len(lines) > 1 else ["{}"]))
    if rule.approval is not None:
        fields.append(("approval", ["", f"timeout: {rule.approval.timeout}"]))
    out: list[str] = []
    for i, (key, value_lines) in enumerate(fields):
        prefix = "- " if i == 0 else "  "
        if value_lines[0] == "":
            out.append(f"{prefix}{key}:")
            out.extend(f"    {line}" for line in value_lines[1:])
        else:
            out.append(f"{prefix}{key}: {value_lines[0]}")
    return out


def tool_block(tool: str, rules: Iterable[Rule], indent: int = 2, pin: str | None = None) -> str:
    """`<tool>:\\n  rules:\\n    - ...` for one tool, indented by `indent` spaces, newline-terminated;
    `pin: "<hash>"` first when given."""
    pad = " " * indent
    key = yaml_scalar(tool)
    body = [f"{pad}    {line}" for rule in rules for line in rule_lines(rule)]
    # An empty block would read back as `rules: null`, which is not a list.
    pinned = [pin_line(pin, indent + 2)] if pin is not None else []
    lines = [f"{pad}{key}:", *pinned, f"{pad}  rules:{'' if body else ' []'}", *body]
    return "\n".join(lines) + "\n"


def pin_line(pin: str, indent: int) -> str:
    """The `pin:` line of a tool entry (no newline); `intercept pin` writes exactly this."""
    return f"{' ' * indent}pin: {yaml_quoted(pin)}"


def dump_policy(policy: Policy) -> str:
    """Serialise a policy to YAML that `load_policy_text` reads back to an equal policy."""
    lines: list[str] = []
    if policy.version is not None:
        lines.append(f'version: "{policy.version}"')
    if policy.description is not None:
        lines.append(f"description: {yaml_scalar(policy.description)}")
    lines.append(f"default: {policy.default}")
    if policy.hide:
        lines.append(f"hide: {_flow_list(policy.hide)}")
    text = "\n".join(lines) + "\n"
    if policy.tools:
        text += "tools:\n" + "".join(
            tool_block(name, tp.rules, pin=tp.pin) for name, tp in policy.tools.items()
        )
    return text
