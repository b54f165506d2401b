"""The about page: what enforces the policies on this site, what it guarantees, how to try it, and the
proxy's published MCP conformance results."""

from __future__ import annotations

from generator.site import urls
from generator.site.conformance import load_report
from generator.site.render import highlight_code
from generator.site.usage import run_command
from generator.site.views.context import SiteContext

DEMO_SERVER = "everything"
"""The registry's reference server: it needs no account or key, so it makes the two-minute demo."""


def about_page(ctx: SiteContext) -> bytes:
    path = urls.about_url()
    title = "How Intercept enforces these policies"
    page = ctx.page(
        path,
        title,
        "The Intercept proxy: what it guarantees, how to try it in two minutes, and its MCP conformance "
        "results.",
        [("Home", "/"), ("About", path)],
    )
    steps = [ctx.install_command]
    demo = DEMO_SERVER in {s.slug for s in ctx.catalog.servers}
    if demo:
        server = ctx.catalog.load_server(DEMO_SERVER)
        steps += [f"intercept scaffold {DEMO_SERVER} > {DEMO_SERVER}.yaml", run_command(server)]
    report = load_report()
    return ctx.render(
        "about.html",
        page=page,
        demo_html=highlight_code("\n".join(steps) + "\n", "bash"),
        demo_url=ctx.link(urls.server_url(DEMO_SERVER)) if demo else None,
        report=report,
        different=[s for s in report.scenarios if not s.identical] if report else [],
        reference_url=ctx.link(urls.policy_reference_url()),
    )
