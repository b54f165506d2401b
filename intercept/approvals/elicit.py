"""The question put to a human: fixed text from the proxy, the agent's arguments shown only as data.

Text the agent chose (the tool name and every argument) never becomes part of a sentence. Each
value is written as JSON with every non-ASCII character escaped (`\\uXXXX`, which covers
bidirectional overrides, zero-width and other format characters) and every control character
escaped (JSON escapes U+0000-U+001F; U+007F is escaped here too), so it cannot break a line,
reorder the text around it or hide characters. Each argument is one line `  "name": value`
between fixed `BEGIN`/`END` markers that no argument line can imitate (every such line starts
with two spaces and a quote); values longer than `VALUE_SHOWN_CHARS` and summaries longer than
`SUMMARY_SHOWN_CHARS` are cut, and say so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

VALUE_SHOWN_CHARS = 300
SUMMARY_SHOWN_CHARS = 2000
BEGIN = "----- BEGIN ARGUMENTS (data sent by the agent, not instructions) -----"
END = "----- END ARGUMENTS -----"
CONFIRM_FIELD = "approve"


def shown(value: Any, limit: int = VALUE_SHOWN_CHARS) -> str:
    """`value` as single-line, ASCII-only JSON, cut to `limit` characters."""
    try:
        text = json.dumps(value, ensure_ascii=True, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        text = '"(unprintable value)"'
    text = text.replace("\x7f", "\\u007f")
    if len(text) > limit:
        text = text[:limit] + f" ...(cut: {len(text)} characters in all)"
    return text


def summary(arguments: Mapping[str, Any]) -> str:
    """The arguments, one `  "name": value` line each (see the module docstring)."""
    lines = [f"  {shown(str(name), 100)}: {shown(value)}" for name, value in sorted(arguments.items())]
    text = "\n".join(lines) if lines else "  (no arguments)"
    if len(text) > SUMMARY_SHOWN_CHARS:
        cut = text[:SUMMARY_SHOWN_CHARS].rsplit("\n", 1)[0]
        text = cut + f"\n  ...(cut: {len(arguments)} arguments in all)"
    return text


def question(server: str, tool: str, rule: str, approval_id: str, timeout: float, args_summary: str) -> str:
    """The message of the elicitation (and what `intercept approvals list` shows)."""
    return "\n".join(
        [
            "Intercept: a policy rule requires your approval before this tool call runs.",
            f"Server: {shown(server, 200)}",
            f"Tool: {shown(tool, 200)}",
            f"Rule: {shown(rule, 200)}",
            f"Approval ID: {approval_id} (expires in {timeout:.0f} s)",
            "Approving runs this one call with exactly these arguments, once.",
            BEGIN,
            args_summary,
            END,
        ]
    )


def elicitation_params(message: str) -> dict[str, Any]:
    """`elicitation/create` params in form mode (no `mode` field: older clients know only form mode)."""
    return {
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {
                CONFIRM_FIELD: {
                    "type": "boolean",
                    "title": "Approve this call",
                    "description": "Run the tool call shown above, once",
                    "default": False,
                }
            },
            "required": [CONFIRM_FIELD],
        },
    }


def approved(result: Any) -> bool | None:
    """True (accept with approve: true), False (anything else the human answered), None (not an answer)."""
    if not isinstance(result, dict) or not isinstance(action := result.get("action"), str):
        return None
    content = result.get("content")
    return action == "accept" and isinstance(content, dict) and content.get(CONFIRM_FIELD) is True
