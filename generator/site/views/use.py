"""The "Use it" block every tool and server page shows: install, policy files, run line, client configs."""

from __future__ import annotations

from typing import Any

from generator.catalog.models import Server
from generator.catalog.policyfile import policy_file_name
from generator.site import urls
from generator.site.render import highlight_code
from generator.site.usage import DEFAULT_INSTALL_COMMAND, client_configs, required_env, run_command
from generator.site.views.context import SiteContext

CHOICE = (
    "Pick the recommended file to keep tools the server adds later working until you review them; pick "
    "the strict one when a tool nobody has reviewed must never run, for example in production."
)


def use_it(ctx: SiteContext, server: Server) -> dict[str, Any]:
    install = ctx.install_command
    run = run_command(server)
    return {
        "slug": server.slug,
        "file_name": policy_file_name(server),
        "install_html": highlight_code(install + "\n", "bash"),
        "install_note": (
            "Intercept is not published on PyPI: install it from a checkout of its source."
            if install == DEFAULT_INSTALL_COMMAND
            else ""
        ),
        "policy_url": ctx.link(urls.policy_url(server.slug)),
        "strict_url": ctx.link(urls.strict_policy_url(server.slug)),
        "choice": CHOICE,
        "run_html": highlight_code(run + "\n", "bash"),
        "env": list(required_env(server)),
        "configs": [
            {"client": c.client, "file": c.file, "note": c.note, "html": highlight_code(c.text, c.language)}
            for c in client_configs(server)
        ],
    }
