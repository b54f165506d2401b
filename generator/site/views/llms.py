"""llms.txt: the site described for language models, with every server and its policy's address."""

from __future__ import annotations

from generator.site import urls
from generator.site.views.context import SITE_NAME, SiteContext, clip


def llms_txt(ctx: SiteContext) -> str:
    catalog = ctx.catalog
    lines = [
        f"# {SITE_NAME}",
        "",
        f"> Reference pages for {catalog.tool_count:,} tools of {len(catalog.servers):,} MCP servers: "
        "what each tool does, its category and risk, and the recommended Intercept policy (YAML) that "
        "`intercept run` "
        "enforces.",
        "",
        "## Machine-readable",
        "",
        f"- [registry.json]({ctx.absolute}/registry.json): every server and tool with category, risk and "
        "recommended rules",
        f"- [Policy language]({ctx.absolute}{urls.policy_reference_url()}): the rules the policies use",
        "",
        "## Servers",
        "",
    ]
    for server in catalog.servers:
        summary = f": {clip(server.summary, 160)}" if server.summary else ""
        lines.append(
            f"- [{_md_text(server.name)}]({ctx.absolute}{urls.server_url(server.slug)}){_md_text(summary)} "
            f"({server.tool_count} tools; policy: {ctx.absolute}{urls.policy_url(server.slug)})"
        )
    return "\n".join(lines) + "\n"


def _md_text(text: str) -> str:
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text.replace("[", "(").replace("]", ")")
