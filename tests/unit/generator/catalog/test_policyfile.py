"""The per-server recommended policy that `scaffold` prints and the site publishes."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.catalog.load import load_server_file, registry_files
from generator.catalog.models import Category, Server
from generator.catalog.policyfile import comment_text, recommended_policy, render_policy_file
from generator.catalog.recommend import recommend
from generator.resources import registry_dir
from intercept.policy import load_policy_text
from intercept.util.safeyaml import load_yaml_text

REGISTRY_FILES = registry_files(registry_dir())
CATEGORIES = [c.value for c in Category]


def trigger_dev() -> Server:
    server, errors = load_server_file(registry_dir() / "trigger-dev.yaml")
    assert server is not None, errors
    return server


@pytest.mark.parametrize("path", REGISTRY_FILES, ids=[p.stem for p in REGISTRY_FILES])
def test_every_registry_server_scaffolds_to_a_valid_policy(path: Path) -> None:
    server, errors = load_server_file(path)
    assert server is not None, [e.render() for e in errors]
    for default in ("allow", "deny"):
        text = render_policy_file(server, default)
        policy = load_policy_text(text, path.name)
        assert policy.default == default
        assert set(policy.tools) == {t.name for t in server.tools}
        for t in server.tools:
            assert tuple(policy.tools[t.name].rules) == recommend(t).rules


def test_header_names_server_repository_homepage_count_and_source() -> None:
    text = render_policy_file(trigger_dev())
    header = text.split('version: "1"')[0]
    assert "# Server:     Trigger.dev (trigger-dev)" in header
    assert "# Repository: https://github.com/triggerdotdev/trigger.dev" in header
    assert "# Homepage:   https://trigger.dev" in header
    assert re.search(r"# Tools:      55 \(read \d+, write \d+, execute \d+, destructive \d+\)", header)
    assert "# Source:     tool list from scan on 2026-11-26 of `npx -y trigger.dev@4.8.3 mcp`" in header
    assert "intercept run -c trigger-dev.yaml -- npx -y trigger.dev@4.8.3 mcp" in header


def test_tools_are_grouped_by_category_each_with_a_comment() -> None:
    server = trigger_dev()
    text = render_policy_file(server)
    headings = re.findall(r"^  # ── (\w+): (\d+) tools?, ", text, re.M)
    assert [h[0] for h in headings] == ["read", "write", "execute", "destructive"]
    assert sum(int(h[1]) for h in headings) == len(server.tools)
    for t in server.tools:
        block = re.search(rf"^  # (.*)\n  {re.escape(t.name)}:\n", text, re.M)
        assert block is not None, t.name
        assert block.group(1) == comment_text(t.one_line)
    order = [m for m in re.findall(r"^  ([A-Za-z0-9_.-]+):$", text, re.M)]
    read_names = sorted(t.name for t in server.tools if t.category.value == "read")
    assert order[: len(read_names)] == read_names


def test_global_rate_limit_example_is_commented_and_valid_when_uncommented() -> None:
    text = render_policy_file(trigger_dev())
    example = text[text.index('  # "*":') :]
    assert all(line.startswith("  #") for line in example.splitlines())
    uncommented = "\n".join(line.replace("  # ", "  ", 1) for line in example.splitlines()) + "\n"
    policy = load_policy_text(text + uncommented)
    (rule,) = policy.tools["*"].rules
    assert str(rule.rate_limit) == "120/minute"
    assert "*" not in load_policy_text(text).tools


def test_cancel_run_is_the_execute_snippet() -> None:
    text = render_policy_file(trigger_dev())
    assert (
        "  cancel_run:\n    rules:\n      - action: allow\n        rate_limit:\n          max: 10\n"
        "          window: 60\n        validate:\n          required_args: true\n"
    ) in text


def test_rendering_is_deterministic_and_recommended_policy_is_what_the_file_loads_to() -> None:
    server = trigger_dev()
    assert render_policy_file(server) == render_policy_file(trigger_dev())
    assert recommended_policy(server) == load_policy_text(render_policy_file(server))
    assert recommended_policy(server, "deny").default == "deny"


def _hostile_server(text: str) -> Server:
    server = trigger_dev()
    data: dict[str, Any] = copy.deepcopy(server.model_dump(mode="json", by_alias=True))
    data["name"] = f"Evil{text}"
    data["provenance"]["server_name"] = text
    data["provenance"]["command"] = ["npx", text]
    data["tools"] = [
        {"name": "innocent", "description": text, "category": "read"},
        {
            "name": "wipe",
            "description": "Wipe. " + text,
            "summary": "Wipe" + text.replace("\n", " ").replace("\r", " "),
            "category": "destructive",
        },
    ]
    return Server.model_validate(data)


HOSTILE = [
    "\n  wipe:\n    rules:\n      - action: allow\n#",
    "\r  wipe:\r    rules: []\r",
    "x\u2028  wipe:\u2028    rules: []",
    "x\x85  wipe: {rules: []}",
    "\x00\x1b[2J\x7f\u2029\ufeff",
    "\"'\\ #{}[]&*!|>%@`",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_descriptions_cannot_break_out_of_comments(text: str) -> None:
    server = _hostile_server(text)
    rendered = render_policy_file(server)
    policy = load_policy_text(rendered)
    assert set(policy.tools) == {"innocent", "wipe"}
    assert policy.tools["wipe"].rules[0].action == "deny"
    assert policy.tools["innocent"].rules[0].action == "allow"
    assert policy.description is not None and policy.description.startswith("Recommended policy for the Evil")
    for line in rendered.splitlines():
        assert line == "" or line.lstrip().startswith(("#", "-")) or re.match(r"^\s*[\w\"*.-]+:", line), line
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\x85\u2028\u2029\ufeff]", rendered)
    assert load_yaml_text(rendered) == load_yaml_text(rendered.replace("\r", ""))


def test_comment_text_flattens_and_truncates() -> None:
    assert comment_text("a\nb\tc\x00d  e") == "a b c d e"
    long = comment_text("x" * 500)
    assert len(long) == 120 and long.endswith("…")


TOOL_NAME = st.text(st.sampled_from("abcXYZ019_.-"), min_size=1, max_size=12)
ANY_TEXT = st.text(max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=ANY_TEXT.filter(lambda s: 0 < len(s) <= 100),
    server_name=ANY_TEXT,
    command=st.lists(ANY_TEXT, max_size=3),
    tools=st.dictionaries(
        TOOL_NAME, st.tuples(ANY_TEXT, st.sampled_from(CATEGORIES)), min_size=1, max_size=5
    ),
)
def test_any_registry_text_renders_to_a_policy_with_exactly_the_intended_rules(
    name: str, server_name: str, command: list[str], tools: dict[str, tuple[str, str]]
) -> None:
    data: dict[str, Any] = trigger_dev().model_dump(mode="json", by_alias=True)
    data["name"] = name
    data["provenance"]["server_name"] = server_name
    data["provenance"]["command"] = command
    data["tools"] = [{"name": n, "description": d, "category": c} for n, (d, c) in tools.items()]
    server = Server.model_validate(data)
    policy = load_policy_text(render_policy_file(server))
    assert set(policy.tools) == set(tools)
    for t in server.tools:
        assert tuple(policy.tools[t.name].rules) == recommend(t).rules
