"""Write a synthetic registry of N tools, 25 per server unless told, in the real registry format.

Usage: python bench/synth_registry.py N DIR [TOOLS_PER_SERVER]

Deterministic: the same N gives byte-identical files. Names come from a verb x noun vocabulary so
that, as in the real registry, many servers share tool names and the similarity ranking has work to do.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import yaml

TOOLS_PER_SERVER = 25

VERBS: dict[str, str] = {
    "get": "read",
    "list": "read",
    "search": "read",
    "describe": "read",
    "fetch": "read",
    "query": "read",
    "read": "read",
    "find": "read",
    "count": "read",
    "export": "read",
    "create": "write",
    "update": "write",
    "add": "write",
    "set": "write",
    "rename": "write",
    "tag": "write",
    "upload": "write",
    "comment_on": "write",
    "assign": "write",
    "edit": "write",
    "run": "execute",
    "trigger": "execute",
    "deploy": "execute",
    "cancel": "execute",
    "restart": "execute",
    "replay": "execute",
    "schedule": "execute",
    "invoke": "execute",
    "delete": "destructive",
    "purge": "destructive",
    "drop": "destructive",
    "archive": "destructive",
    "refund": "financial",
    "charge": "financial",
    "pay": "financial",
    "transfer_funds_for": "financial",
}

NOUNS = [
    "issue",
    "pull_request",
    "repository",
    "branch",
    "commit",
    "file",
    "folder",
    "document",
    "page",
    "project",
    "task",
    "run",
    "job",
    "workflow",
    "deployment",
    "environment",
    "secret",
    "variable",
    "user",
    "team",
    "member",
    "invoice",
    "customer",
    "subscription",
    "payment",
    "order",
    "product",
    "ticket",
    "incident",
    "alert",
    "dashboard",
    "metric",
    "log",
    "trace",
    "event",
    "webhook",
    "channel",
    "message",
    "thread",
    "calendar_event",
    "contact",
    "lead",
    "campaign",
    "report",
    "record",
    "table",
    "database",
    "index",
    "bucket",
    "object",
    "image",
    "video",
    "playlist",
    "note",
    "label",
    "milestone",
]

WORDS = [
    "the",
    "agent",
    "can",
    "use",
    "this",
    "to",
    "inspect",
    "or",
    "change",
    "state",
    "in",
    "the",
    "remote",
    "service",
    "and",
    "it",
    "returns",
    "a",
    "JSON",
    "object",
    "with",
    "identifiers",
    "timestamps",
    "and",
    "status",
    "fields",
    "for",
    "each",
    "matching",
    "item",
]


def _description(rng: random.Random, verb: str, noun: str) -> str:
    human = noun.replace("_", " ")
    first = f"{verb.replace('_', ' ').capitalize()} a {human} in the service."
    rest = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 30)))
    extra = (
        f" See the `{noun}` docs or [the API guide](https://example.com/docs/{noun})."
        if rng.random() < 0.3
        else ""
    )
    return f"{first} {rest.capitalize()}.{extra}"


def _schema(rng: random.Random, noun: str) -> dict[str, object]:
    props: dict[str, object] = {
        f"{noun}_id": {"type": "string", "description": f"The {noun.replace('_', ' ')} identifier."},
    }
    for extra in rng.sample(
        ["limit", "cursor", "project_ref", "force", "title", "body", "labels"], rng.randint(1, 4)
    ):
        kind = {"limit": "integer", "force": "boolean", "labels": "array"}.get(extra, "string")
        prop: dict[str, object] = {"type": kind, "description": f"Optional {extra.replace('_', ' ')}."}
        if kind == "array":
            prop["items"] = {"type": "string"}
        props[extra] = prop
    return {"type": "object", "properties": props, "required": [f"{noun}_id"]}


def server_doc(index: int, tool_count: int) -> dict[str, object]:
    rng = random.Random(index)
    slug = f"synth-{index:05d}"
    verbs = list(VERBS)
    names: set[str] = set()
    tools: list[dict[str, object]] = []
    while len(tools) < tool_count:
        verb, noun = rng.choice(verbs), rng.choice(NOUNS)
        name = f"{verb}_{noun}"
        if name in names:
            continue
        names.add(name)
        category = VERBS[verb]
        tool: dict[str, object] = {
            "name": name,
            "description": _description(rng, verb, noun),
            "category": category,
            "input_schema": _schema(rng, noun),
        }
        if category == "read":
            tool["annotations"] = {"readOnlyHint": True}
        elif category == "destructive":
            tool["annotations"] = {"destructiveHint": True}
        tools.append(tool)
    return {
        "slug": slug,
        "name": f"Synth Service {index}",
        "description": f"Synthetic MCP server number {index} for benchmarks.",
        "repository": f"https://example.com/synth/{slug}",
        "homepage": "https://example.com",
        "tags": ["synthetic"],
        "run": {
            "package_manager": "npm",
            "package": f"@synth/{slug}",
            "version": "1.0.0",
            "transport": "stdio",
        },
        "provenance": {"method": "manual", "obtained_at": "2026-11-01T00:00:00Z", "notes": "synthetic"},
        "tools": tools,
    }


def write_registry(total_tools: int, directory: Path, per_server: int = TOOLS_PER_SERVER) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    servers = 0
    remaining = total_tools
    while remaining > 0:
        count = min(per_server, remaining)
        doc = server_doc(servers, count)
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
        (directory / f"{doc['slug']}.yaml").write_text(text, encoding="utf-8")
        servers += 1
        remaining -= count
    return servers


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or not all(a.isdigit() for a in argv[1:2] + argv[3:]):
        print("usage: python bench/synth_registry.py N DIR [TOOLS_PER_SERVER]", file=sys.stderr)
        return 2
    per_server = int(argv[3]) if len(argv) == 4 else TOOLS_PER_SERVER
    servers = write_registry(int(argv[1]), Path(argv[2]), per_server)
    print(f"wrote {servers} servers, {argv[1]} tools to {argv[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
