"""A hostile registry: script tags, attribute breakouts, javascript: links and names that look like paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from generator.site import urls as pages
from tests.unit.generator.site.site_support import build, json_ld_blocks, parse_page

XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
PATH_NAMES = ["..", ".", ".hidden", "..foo", "a..b", "index.html", "-dash"]


def _hostile_registry(directory: Path) -> Path:
    directory.mkdir()
    tools = [
        {
            "name": "evil_tool",
            "title": XSS,
            "summary": "Summary " + XSS,
            "description": (
                f"Hi {XSS} [click](javascript:alert(3)) [data](data:text/html;base64,PHNjcmlwdD4=) "
                '[vb](vbscript:msgbox) <a href="javascript:alert(4)">raw</a> '
                "![img](https://evil.example/t.png) "
                "[ok](https://good.example/path?a=1&b=2) [rel](/servers/../../etc/passwd)\n\n"
                "<script>alert(5)</script>\n\n# Heading injection\n\n<style>body{display:none}</style>"
            ),
            "category": "write",
            "category_reason": XSS,
            "input_schema": {
                "type": "object",
                "properties": {
                    XSS: {"type": "string", "description": XSS, "enum": [XSS], "default": XSS},
                    "</script>": {"type": ["string", XSS]},
                },
                "required": [XSS],
            },
            "annotations": {XSS: XSS, "title": "</script><script>alert(6)</script>"},
        }
    ]
    tools += [
        {"name": name, "description": f"Tool named {name}. {XSS}", "category": "read"} for name in PATH_NAMES
    ]
    server = {
        "slug": "evil",
        "name": 'Evil " onmouseover="alert(7) </title><script>alert(8)</script>',
        "description": f"Server {XSS} [x](javascript:alert(9))",
        "tags": [XSS],
        "run": {
            "package_manager": "npm",
            "package": "evil-pkg",
            "version": "1.0.0",
            "args": [XSS, "; rm -rf /"],
            "env": {"TOKEN": XSS},
        },
        "provenance": {"method": "manual", "obtained_at": "2026-01-01T00:00:00Z", "notes": XSS},
        "tools": tools,
    }
    other = {
        **server,
        "slug": "victim",
        "name": "Victim",
        "description": "Fine.",
        "tools": [{"name": "update_thing", "description": "Update " + XSS, "category": "write"}],
    }
    for doc in (server, other):
        (directory / f"{doc['slug']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    return directory


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    registry = _hostile_registry(base / "registry")
    out = base / "site"
    build(registry, out)
    return out


def _html_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if p.is_file())


def test_no_injected_markup_anywhere(hostile_site: Path) -> None:
    pages_ = _html_pages(hostile_site)
    assert len(pages_) > 15
    for page in pages_:
        parsed = parse_page(page)
        scripts = [(tag, a) for tag, a in parsed.attrs if tag == "script"]
        assert all(
            (a.get("src") or "").endswith(("/assets/theme.js", "/assets/site.js"))
            or a.get("type") == "application/ld+json"
            for _, a in scripts
        ), page
        assert parsed.scripts == [], page
        for tag, attrs in parsed.attrs:
            assert tag not in {"img", "style", "iframe", "object"}, (page, tag)
            assert not any(name.startswith("on") for name in attrs), (page, tag, attrs)
        for _, link in parsed.links:
            lowered = link.strip().lower()
            assert not lowered.startswith(("javascript:", "data:", "vbscript:")), (page, link)
            assert lowered.startswith(("/", "#", "http://", "https://")), (page, link)
        for block in json_ld_blocks(page):
            assert isinstance(block, dict)


def test_hostile_text_is_shown_escaped(hostile_site: Path) -> None:
    html = (hostile_site / pages.output_path(pages.tool_url("evil", "evil_tool"))).read_text("utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert 'href="https://good.example/path?a=1&amp;b=2"' in html
    assert "Heading injection" in html and "<h1># Heading" not in html
    ld = json.dumps(json_ld_blocks(hostile_site / pages.output_path(pages.tool_url("evil", "evil_tool"))))
    assert "</script>" in ld  # the text survives, escaped inside the JSON-LD block
    assert "</script><script>" not in html.split('type="application/ld+json">', 1)[1].split("</script>", 1)[0]


def test_path_like_tool_names_stay_inside_their_server_folder(hostile_site: Path) -> None:
    tools_dir = (hostile_site / "servers" / "evil" / "tools").resolve()
    for name in PATH_NAMES:
        target = (hostile_site / pages.output_path(pages.tool_url("evil", name))).resolve()
        assert target.is_file(), name
        assert target.parent.parent == tools_dir, name
        assert not target.parent.name.startswith(".") or target.parent.name.startswith("~"), name
    assert {p.name for p in tools_dir.iterdir()} == {
        "evil_tool",
        "~~",
        "~",
        "~hidden",
        "~~foo",
        "a..b",
        "index.html",
        "-dash",
    }
    every_file = {p.resolve() for p in hostile_site.rglob("*")}
    assert all(str(p).startswith(str(hostile_site.resolve()) + "/") for p in every_file)


def test_policy_file_stays_valid_with_hostile_names(hostile_site: Path) -> None:
    from intercept.policy import load_policy

    policy = load_policy(hostile_site / "policies" / "evil.yaml")
    assert set(policy.tools) == {"evil_tool", *PATH_NAMES}
