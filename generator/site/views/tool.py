"""Tool pages: what a tool does, its parameters, category evidence and recommended policy snippet."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from markupsafe import Markup

from generator.catalog.models import Server, Tool
from generator.catalog.policyfile import policy_file_name, tool_snippet
from generator.catalog.recommend import Recommendation, recommend
from generator.site import urls
from generator.site.faq import tool_faq, usage_text, why_text
from generator.site.jsonld import faq_page, tool_work
from generator.site.parsecache import ServerRef, ToolRef
from generator.site.render import highlight_snippet, inline_markdown, markdown_html, safe_link
from generator.site.views.context import SiteContext, clip, tool_items
from generator.site.views.use import use_it

MORE_TOOLS_LIMIT = 8


class ParamRow(NamedTuple):
    name: str
    type: str
    required: bool
    description: str
    notes: str


class EvidenceRow(NamedTuple):
    signal: str
    category: str
    weight: str
    detail: str


def schema_type(prop: Any) -> str:
    if not isinstance(prop, dict):
        return "any"
    kind = prop.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array":
        items = prop.get("items")
        return f"array of {schema_type(items)}" if isinstance(items, dict) else "array"
    if isinstance(kind, str):
        return kind
    for combiner in ("anyOf", "oneOf"):
        options = prop.get(combiner)
        if isinstance(options, list):
            return " | ".join(schema_type(o) for o in options)
    if "enum" in prop:
        return "enum"
    return "any"


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def parameters(tool: Tool) -> list[ParamRow]:
    props = tool.input_schema.get("properties")
    if not isinstance(props, dict):
        return []
    required = set(tool.required_params)
    rows = []
    for name, prop in props.items():
        spec = prop if isinstance(prop, dict) else {}
        notes = []
        if isinstance(spec.get("enum"), list):
            notes.append("one of: " + ", ".join(_value_text(v) for v in spec["enum"][:20]))
        if "default" in spec:
            notes.append("default: " + _value_text(spec["default"]))
        description = spec.get("description")
        rows.append(
            ParamRow(
                str(name),
                schema_type(spec),
                name in required,
                clip(description, 600) if isinstance(description, str) else "",
                "; ".join(notes),
            )
        )
    rows.sort(key=lambda r: (not r.required, r.name))
    return rows


def _more_tools(server_ref: ServerRef, tool: Tool) -> list[ToolRef]:
    same = [t for t in server_ref.tools if t.category is tool.category and t.name != tool.name]
    other = [t for t in server_ref.tools if t.category is not tool.category]
    return (same + other)[:MORE_TOOLS_LIMIT]


class Provenance(NamedTuple):
    server_version: str
    obtained: str
    """How and when the tool list was obtained, e.g. 'scan on 2026-01-05'."""
    repository: str | None
    definition_hash: str | None
    review: str
    """'reviewed by hand' or 'classified automatically'."""
    review_reason: str | None


def provenance(server: Server, tool: Tool) -> Provenance:
    """Where the tool's definition and its category come from, as the details table shows it."""
    prov = server.provenance
    return Provenance(
        server_version=prov.server_version or server.run.version,
        obtained=f"{prov.method} on {prov.obtained_at.date().isoformat()}",
        repository=server.repository if server.repository and safe_link(server.repository) else None,
        definition_hash=tool.definition_hash or None,
        review="reviewed by hand" if tool.reviewed else "classified automatically",
        review_reason=tool.rating_reason or None,
    )


def _tool_ld(tool: Tool, server: Server, risk: str, prov: Provenance) -> dict[str, Any]:
    facts = [("category", tool.category.value), ("risk", risk), ("classification", prov.review)]
    if prov.definition_hash:
        facts.append(("definition hash", prov.definition_hash))
    return tool_work(
        tool.name,
        tool.one_line,
        server.name,
        prov.server_version,
        server.provenance.obtained_at.date().isoformat(),
        prov.repository,
        facts,
    )


def tool_page(ctx: SiteContext, server: Server, server_ref: ServerRef, tool: Tool) -> bytes:
    rec: Recommendation = recommend(tool)
    file_name = policy_file_name(server)
    path = urls.tool_url(server.slug, tool.name)
    faq = tool_faq(tool, server, rec, file_name)
    crumbs = [
        ("Home", "/"),
        ("Servers", urls.servers_url()),
        (server.name, urls.server_url(server.slug)),
        (tool.name, path),
    ]
    snippet = tool_snippet(tool)
    page = ctx.page(
        path,
        f"{tool.name}: {server.name} MCP tool policy",
        f"{tool.one_line} Part of the "
        f"{server.name} MCP server. Risk: {rec.risk.value}. Recommended policy: {rec.pattern}.",
        crumbs,
        _tool_ld(tool, server, rec.risk.value, provenance(server, tool)),
        faq_page(faq),
        og_type="article",
    )
    more = _more_tools(server_ref, tool)
    similar = ctx.similar.for_tool(server.slug, tool.name, tool.category)
    evidence = [EvidenceRow(e.signal, e.category.value, f"{e.weight:g}", e.detail) for e in tool.evidence]
    return ctx.render(
        "tool.html",
        page=page,
        tool=tool,
        server=server,
        rec=rec,
        risk=rec.risk.value,
        category=rec.category.value,
        usage=usage_text(tool, server, rec),
        why=why_text(tool, server, rec),
        snippet=snippet,
        snippet_html=highlight_snippet(snippet, tool.name),
        file_name=file_name,
        policy_url=ctx.link(urls.policy_url(server.slug)),
        server_url=ctx.link(urls.server_url(server.slug)),
        tool_count=len(server.tools),
        description_html=markdown_html(tool.description) if tool.description else Markup(""),
        one_line_html=inline_markdown(tool.one_line),
        params=parameters(tool),
        annotations=[(str(k), _value_text(v)) for k, v in sorted(tool.annotations.items())],
        evidence=evidence,
        category_reason=tool.category_reason,
        more=tool_items(ctx, more, show_server=False) if more else None,
        similar=tool_items(ctx, similar) if similar else None,
        category_url=ctx.link(urls.category_url(rec.category)),
        risk_url=ctx.link(urls.risk_url(rec.risk)),
        reference_url=ctx.link(urls.policy_reference_url()),
        faq=list(faq),
        assessment=rec.assessment,
        provenance=provenance(server, tool),
        use=use_it(ctx, server),
        about_url=ctx.link(urls.about_url()),
    )
