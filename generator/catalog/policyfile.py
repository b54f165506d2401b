"""The recommended per-server policy file: what `intercept scaffold` prints and the site publishes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from generator.catalog.models import CATEGORY_ORDER, Category, Server, Tool
from generator.catalog.recommend import PATTERNS, Recommendation, recommend
from intercept.policy import Policy, ToolPolicy, load_policy_text, tool_block, yaml_quoted

_COMMENT_LIMIT = 120


def comment_text(text: str, limit: int = _COMMENT_LIMIT) -> str:
    """Untrusted text made safe for a one-line YAML comment: no line breaks, no control chars."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    flat = " ".join(flat.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat


def tool_snippet(tool: Tool) -> str:
    """The YAML a tool page shows: exactly the block `scaffold` emits for that tool."""
    return "tools:\n" + tool_block(tool.name, recommend(tool).rules)


def _grouped(server: Server) -> list[tuple[Category, list[tuple[Tool, Recommendation]]]]:
    groups: dict[Category, list[tuple[Tool, Recommendation]]] = {c: [] for c in CATEGORY_ORDER}
    for tool in server.tools:
        groups[tool.category].append((tool, recommend(tool)))
    return [(c, sorted(items, key=lambda i: i[0].name)) for c, items in groups.items() if items]


def category_counts(tools: Iterable[Tool]) -> dict[Category, int]:
    counts = {c: 0 for c in CATEGORY_ORDER}
    for tool in tools:
        counts[tool.category] += 1
    return counts


def policy_file_name(server: Server) -> str:
    return f"{server.slug}.yaml"


def render_policy_file(server: Server, default: Literal["allow", "deny"] = "allow", pin: bool = False) -> str:
    """The full recommended policy for a server, with a comment header; deterministic.

    `pin`: each tool also carries `pin:` with the registry's definition hash (`scaffold --pin`)."""
    counts = category_counts(server.tools)
    breakdown = ", ".join(f"{c.value} {n}" for c, n in counts.items() if n)
    prov = server.provenance
    origin = f"{prov.method} on {prov.obtained_at.date().isoformat()}"
    if prov.command:
        origin += f" of `{comment_text(' '.join(prov.command))}`"
    if prov.server_name:
        origin += f" ({comment_text(prov.server_name)} {comment_text(prov.server_version or '')})".rstrip()
    run = comment_text(" ".join(server.run.command()))
    file_name = policy_file_name(server)
    lines = [
        f"# Intercept policy for the {comment_text(server.name)} MCP server",
        f"# Server:     {comment_text(server.name)} ({server.slug})",
        f"# Repository: {comment_text(server.repository or 'unknown')}",
        f"# Homepage:   {comment_text(server.homepage or 'unknown')}",
        f"# Tools:      {len(server.tools)} ({breakdown})",
        f"# Source:     tool list from {origin}",
        "# Rules:      the recommended rules for each tool's category; edit freely.",
        "#",
        f"# Check it:   intercept validate -c {file_name}",
        f"# Enforce it: intercept run -c {file_name} -- {run}",
        *(
            [
                "# Pins:       each tool's definition hash from the registry; check them against the",
                f"#             live server with: intercept pin --check -c {file_name} -- {run}",
            ]
            if pin
            else []
        ),
        'version: "1"',
        f"description: {yaml_quoted(f'Recommended policy for the {comment_text(server.name)} MCP server')}",
        f"default: {default}",
        "tools:",
    ]
    body = "\n".join(lines) + "\n"
    for category, items in _grouped(server):
        pattern = PATTERNS[category]
        body += f"\n  # ── {category.value}: {len(items)} tool{'s' if len(items) != 1 else ''}, {pattern}\n"
        for tool, rec in items:
            body += f"\n  # {comment_text(tool.one_line)}\n"
            digest = (tool.definition_hash or tool.computed_definition_hash()) if pin else None
            body += tool_block(tool.name, rec.rules, pin=digest)
    body += (
        "\n  # Example: one limit shared by every tool on this server. Uncomment to use.\n"
        '  # "*":\n'
        "  #   rules:\n"
        "  #     - name: global rate limit\n"
        "  #       rate_limit: 120/minute\n"
        "  #       on_deny: Global rate limit of 120 calls a minute reached\n"
    )
    return body


def recommended_policy(server: Server, default: Literal["allow", "deny"] = "allow") -> Policy:
    """The policy object the file above loads to; the proxy enforces exactly this."""
    return load_policy_text(render_policy_file(server, default), f"policies/{policy_file_name(server)}")


def policy_rules_by_tool(server: Server) -> dict[str, ToolPolicy]:
    return {t.name: ToolPolicy(rules=list(recommend(t).rules)) for t in server.tools}
