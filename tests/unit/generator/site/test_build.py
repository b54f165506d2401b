"""The built site: every section, snippets equal to scaffold, links, JSON-LD, sitemap, determinism, swap."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.catalog.load import RegistryError, load_registry
from generator.catalog.models import Category, Registry
from generator.catalog.policyfile import render_policy_file, tool_snippet
from generator.catalog.recommend import recommend
from generator.site import urls as pages
from generator.site.views.registry_json import catalogue_entry
from intercept.cli import main
from intercept.policy import KNOWN_KEYS, OPERATORS, load_policy_text
from tests.unit.generator.site.site_support import (
    BASE_URL,
    SMALL_REGISTRY,
    build,
    json_ld_blocks,
    parse_page,
    tree_hashes,
)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(SMALL_REGISTRY)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build(SMALL_REGISTRY, out)
    return out


def _page(site: Path, url: str) -> Path:
    return site / pages.output_path(url)


def test_tool_pages_have_every_section_in_order(site: Path, registry: Registry) -> None:
    for server in registry:
        for tool in server.tools:
            rec = recommend(tool)
            path = _page(site, pages.tool_url(server.slug, tool.name))
            parsed = parse_page(path)
            text = " ".join(" ".join(parsed.text).split())
            assert parsed.h2 == [
                "When AI agents use this tool",
                f"Why enforce a policy on {tool.name}",
                "Recommended policy",
                "Use it",
                "Details",
                f"More {server.name} tools",
                f"Similar {rec.category.value} tools on other servers",
                "Related reading",
                "Frequently asked questions",
            ], path
            assert f"MCP Tool Reference {rec.risk.value} risk" in text
            assert f"Part of the {server.name} MCP server" in text
            assert f"See the full {server.name} policy for all {len(server.tools)} tools" in text
            assert f"View all {len(server.tools)} tools" in text
            assert f"{server.slug}.yaml" in text
            for question in (
                "What does the",
                "How do I enforce a policy on",
                "What is the risk level of",
                "be rate-limited?",
                "How do I block",
                "Which MCP server provides",
            ):
                assert question in text, (path, question)
            for param in tool.required_params:
                assert param in text


def _snippet_text(path: Path) -> str:
    html = path.read_text("utf-8")
    start = html.index('<code id="snippet">') + len('<code id="snippet">')
    end = html.index("</code>", start)
    inner = html[start:end]
    while "<span" in inner:
        a = inner.index("<span")
        inner = inner[:a] + inner[inner.index(">", a) + 1 :]
    return unescape(inner.replace("</span>", ""))


def test_snippet_is_exactly_the_scaffold_block(site: Path, registry: Registry) -> None:
    for server in registry:
        policy = load_policy_text(render_policy_file(server))
        for tool in server.tools:
            shown = _snippet_text(_page(site, pages.tool_url(server.slug, tool.name)))
            assert shown == tool_snippet(tool)
            assert shown.split("\n", 1)[1] in render_policy_file(server)
            snippet_policy = load_policy_text(shown)
            assert snippet_policy.tools[tool.name] == policy.tools[tool.name]


def test_policy_files_are_byte_identical_to_scaffold(site: Path, registry: Registry) -> None:
    runner = CliRunner()
    for server in registry:
        published = (site / "policies" / f"{server.slug}.yaml").read_bytes()
        assert published == render_policy_file(server).encode("utf-8")
        result = runner.invoke(main, ["scaffold", "--registry", str(SMALL_REGISTRY), server.slug])
        assert result.exit_code == 0, result.output
        assert result.stdout.encode("utf-8") == published


def _html_files(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "pagefind" not in p.parts)


def test_no_broken_internal_links_or_anchors(site: Path) -> None:
    ids = {p: parse_page(p).ids for p in _html_files(site)}
    checked = 0
    for page, _ in ids.items():
        for attr, link in parse_page(page).links:
            if attr == "link.href" and link.startswith(BASE_URL + "/"):
                continue  # the canonical URL names the page itself; browsers do not fetch it
            if link.startswith(("http://", "https://")):
                assert attr == "a.href", f"{page}: external {attr} {link} would make a request leave the site"
                continue
            assert link.startswith(("/", "#")), f"{page}: unexpected link {link!r}"
            target_path, _, anchor = link.partition("#")
            target = (
                page
                if not target_path
                else site / (target_path[1:] + ("index.html" if target_path.endswith("/") else ""))
            )
            assert target.is_file(), f"{page}: broken link {link}"
            if anchor:
                assert anchor in ids.get(target, parse_page(target).ids), f"{page}: missing anchor {link}"
            checked += 1
    assert checked > 500


def test_json_ld_parses_with_breadcrumbs_everywhere_and_faq_on_tool_pages(
    site: Path, registry: Registry
) -> None:
    for page in _html_files(site):
        blocks = json_ld_blocks(page)
        assert len(blocks) == 1, page
        types = [node["@type"] for node in blocks[0]["@graph"]]
        assert "BreadcrumbList" in types, page
        crumbs = blocks[0]["@graph"][0]["itemListElement"]
        assert [c["position"] for c in crumbs] == list(range(1, len(crumbs) + 1))
        assert all(c["item"].startswith(BASE_URL + "/") for c in crumbs)
    for server in registry:
        for tool in server.tools:
            graph = json_ld_blocks(_page(site, pages.tool_url(server.slug, tool.name)))[0]["@graph"]
            faq = next(node for node in graph if node["@type"] == "FAQPage")
            assert len(faq["mainEntity"]) == 6
            assert all(q["acceptedAnswer"]["text"] for q in faq["mainEntity"])


def test_sitemap_is_valid_and_lists_every_page(site: Path) -> None:
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    root = ET.parse(site / "sitemap.xml").getroot()
    assert root.tag == "{http://www.sitemaps.org/schemas/sitemap/0.9}urlset"
    locs = [u.findtext("s:loc", namespaces=ns) for u in root.findall("s:url", ns)]
    assert len(locs) == len(set(locs))
    expected = set()
    for page in _html_files(site):
        rel = page.relative_to(site).as_posix()
        if rel in {"404.html", "search/index.html"}:
            continue
        expected.add(BASE_URL + "/" + rel.removesuffix("index.html"))
    assert set(locs) == expected
    assert (
        site / "robots.txt"
    ).read_text() == f"User-agent: *\nAllow: /\n\nSitemap: {BASE_URL}/sitemap.xml\n"


def test_every_page_has_canonical_meta_and_one_h1_without_skipped_levels(site: Path) -> None:
    for page in _html_files(site):
        parsed = parse_page(page)
        metas = {
            (a.get("property") or a.get("name")): a.get("content") for tag, a in parsed.attrs if tag == "meta"
        }
        for key in ("description", "og:title", "og:description", "og:type", "twitter:card", "twitter:title"):
            assert metas.get(key), (page, key)
        canonical = [a["href"] for tag, a in parsed.attrs if tag == "link" and a.get("rel") == "canonical"]
        if page.name != "404.html":
            rel = page.relative_to(site).as_posix().removesuffix("index.html")
            assert canonical == [f"{BASE_URL}/{rel}"]
        assert parsed.headings.count(1) == 1, page
        for before, after in zip(parsed.headings, parsed.headings[1:], strict=False):
            assert after <= before + 1, (page, parsed.headings)
        landmarks = {tag for tag, _ in parsed.attrs}
        assert {"header", "main", "footer", "nav"} <= landmarks


def test_registry_json_has_every_tool_with_its_recommended_rules(site: Path, registry: Registry) -> None:
    data = json.loads((site / "registry.json").read_text("utf-8"))
    assert data["tool_count"] == registry.tool_count
    assert [s["slug"] for s in data["servers"]] == [s.slug for s in registry]
    for server, entry in zip(registry, data["servers"], strict=True):
        assert entry == json.loads(json.dumps(catalogue_entry(server)))
        by_name = {t["name"]: t for t in entry["tools"]}
        for tool in server.tools:
            rules = [
                r.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
                for r in recommend(tool).rules
            ]
            assert by_name[tool.name]["rules"] == rules
            assert by_name[tool.name]["category"] == tool.category.value
            assert by_name[tool.name]["risk"] == recommend(tool).risk.value
    llms = (site / "llms.txt").read_text("utf-8")
    assert llms.startswith("# ") and all(f"{BASE_URL}/servers/{s.slug}/" in llms for s in registry)
    assert "Page not found" in (site / "404.html").read_text("utf-8")


def _code_text(html: str, code_id: str) -> str:
    start = html.index(f'<code id="{code_id}">') + len(f'<code id="{code_id}">')
    return unescape(
        "".join(part.split(">", 1)[-1] for part in html[start : html.index("</code>", start)].split("<"))
    )


def test_server_page_has_counts_policy_and_client_config(site: Path, registry: Registry) -> None:
    server = registry.by_slug("acme-jobs")
    assert server is not None
    parsed = parse_page(_page(site, pages.server_url("acme-jobs")))
    text = " ".join(" ".join(parsed.text).split())
    assert "<svg" in _page(site, pages.server_url("acme-jobs")).read_text()
    assert "intercept scaffold acme-jobs" in text
    assert parsed.h2[:5] == [
        "Tools by category and risk",
        "All 5 tools",
        "How to run the server",
        "Use it",
        "Recommended policy",
    ]
    html = _page(site, pages.server_url("acme-jobs")).read_text()
    assert (
        _code_text(html, "use-run")
        == shlex.join(["intercept", "run", "-c", "acme-jobs.yaml", "--", *server.run.command()]) + "\n"
    )
    desktop = json.loads(_code_text(html, "use-config-1"))["mcpServers"]["acme-jobs"]
    assert desktop["command"] == "intercept"
    assert desktop["args"][:4] == ["run", "-c", "/ABSOLUTE/PATH/TO/policies/acme-jobs.yaml", "--"]
    assert desktop["args"][4:] == server.run.command()
    assert _code_text(html, "use-config-2").startswith("claude mcp add acme-jobs ")
    assert '"$PWD/policies/acme-jobs.yaml"' in _code_text(html, "use-config-2")
    cursor = json.loads(_code_text(html, "use-config-3"))["mcpServers"]["acme-jobs"]
    assert cursor["args"][2] == "${workspaceFolder}/policies/acme-jobs.yaml"
    vscode = json.loads(_code_text(html, "use-config-4"))["servers"]["acme-jobs"]
    assert vscode["type"] == "stdio" and vscode["args"] == cursor["args"]
    remote_html = _page(site, pages.server_url("docs-search")).read_text()
    remote = json.loads(_code_text(remote_html, "use-config-1"))
    assert remote["mcpServers"]["docs-search"]["args"][-2:] == [
        "--upstream",
        "https://docs-search.example/mcp",
    ]


def test_tool_pages_say_how_to_use_them_without_scan_values(site: Path, registry: Registry) -> None:
    for server in registry:
        for tool in server.tools:
            html = _page(site, pages.tool_url(server.slug, tool.name)).read_text()
            assert "&lt;server command&gt;" not in html
            assert 'id="use-it"' in html and 'href="/about/"' in html
            for value in server.run.scan_values.values():
                assert value not in html


def test_both_policy_files_are_what_scaffold_prints(site: Path, registry: Registry) -> None:
    for server in registry:
        for default, url in (("allow", pages.policy_url), ("deny", pages.strict_policy_url)):
            result = CliRunner().invoke(
                main, ["scaffold", server.slug, "--registry", str(SMALL_REGISTRY), "--default", default]
            )
            assert result.exit_code == 0, result.output
            assert (site / url(server.slug)[1:]).read_text("utf-8") == result.stdout
            assert f"default: {default}\n" in result.stdout


def test_why_this_category_is_shown_when_there_is_a_reason(site: Path) -> None:
    text = _page(site, pages.tool_url("paybox", "create_refund")).read_text()
    assert "Why this category" in text and "Moves money back to the customer." in text


def test_same_registry_gives_byte_identical_site(tmp_path: Path) -> None:
    build(SMALL_REGISTRY, tmp_path / "a" / "site")
    build(SMALL_REGISTRY, tmp_path / "b" / "site", workers=2)
    build(SMALL_REGISTRY, tmp_path / "a" / "site", incremental=False)
    assert tree_hashes(tmp_path / "a" / "site") == tree_hashes(tmp_path / "b" / "site")


def test_registry_error_leaves_previous_site_untouched(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(SMALL_REGISTRY, registry)
    out = tmp_path / "site"
    build(registry, out)
    before = tree_hashes(out)
    (registry / "paybox.yaml").write_text(
        (registry / "paybox.yaml").read_text().replace("category: read", "category: reed", 1)
    )
    (registry / "zz-broken.yaml").write_text("slug: zz-broken\nname: [unclosed\n")
    with pytest.raises(RegistryError) as caught:
        build(registry, out)
    message = caught.value.render()
    assert "paybox.yaml" in message and "zz-broken.yaml" in message
    assert tree_hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".site.cache", "registry", "site"]


def test_incremental_rebuild_renders_one_server_and_matches_a_full_build(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(SMALL_REGISTRY, registry)
    out = tmp_path / "site"
    first = build(registry, out)
    assert first.mode == "full"
    text = (registry / "paybox.yaml").read_text()
    (registry / "paybox.yaml").write_text(
        text.replace("PayBox payments API as MCP tools.", "PayBox payments, as MCP tools.")
    )
    second = build(registry, out)
    assert second.mode == "incremental"
    assert second.rendered_units == 1
    assert 0 < second.written < 12
    assert (
        "PayBox payments, as MCP tools." in (out / pages.output_path(pages.server_url("paybox"))).read_text()
    )
    (registry / "docs-search.yaml").unlink()
    third = build(registry, out)
    assert third.mode == "incremental" and third.deleted >= 3
    assert not (out / "servers" / "docs-search").exists()
    build(registry, tmp_path / "fresh" / "site")
    assert tree_hashes(out) == tree_hashes(tmp_path / "fresh" / "site")


def test_base_url_with_a_path_prefixes_every_link(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(SMALL_REGISTRY, out, base_url="https://docs.example.org/mcp/")
    parsed = parse_page(out / "index.html")
    internal = [link for _, link in parsed.links if not link.startswith(("http", "#"))]
    assert internal and all(link.startswith("/mcp/") for link in internal)
    assert "https://docs.example.org/mcp/sitemap.xml" in (out / "robots.txt").read_text()


def test_cli_build_reports_a_summary_and_rejects_a_bad_base_url(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "build",
            "--registry",
            str(SMALL_REGISTRY),
            "--out",
            str(tmp_path / "site"),
            "--no-search",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "15 tool pages" in result.output and " s" in result.output and "MB" in result.output
    bad = runner.invoke(
        main,
        [
            "build",
            "--registry",
            str(SMALL_REGISTRY),
            "--out",
            str(tmp_path / "x"),
            "--base-url",
            "javascript:alert(1)",
        ],
    )
    assert bad.exit_code == 2 and "base-url" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "x").exists()
    broken = tmp_path / "reg"
    broken.mkdir()
    (broken / "x.yaml").write_text("slug: y\n")
    failed = runner.invoke(main, ["build", "--registry", str(broken), "--out", str(tmp_path / "site")])
    assert failed.exit_code == 1 and "x.yaml" in failed.output and "Traceback" not in failed.output


def test_browse_and_server_index_pages_are_paginated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "synth_registry", Path(__file__).parents[4] / "bench" / "synth_registry.py"
    )
    assert spec is not None and spec.loader is not None
    synth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synth)
    synth.write_registry(300, tmp_path / "registry")
    monkeypatch.setattr(pages, "PAGE_SIZE", 20)
    monkeypatch.setattr(pages, "SERVERS_PAGE_SIZE", 5)
    out = tmp_path / "site"
    build(tmp_path / "registry", out)
    registry = load_registry(tmp_path / "registry")
    read = [t for s in registry for t in s.tools if t.category.value == "read"]
    expected_pages = -(-len(read) // 20)
    assert expected_pages > 2
    assert (out / "categories" / "read" / "page" / str(expected_pages) / "index.html").is_file()
    assert not (out / "categories" / "read" / "page" / str(expected_pages + 1)).exists()
    listed = 0
    for n in range(1, expected_pages + 1):
        page = out / pages.output_path(pages.category_url(Category.READ, n))
        listed += page.read_text().count('class="tool-name"')
    assert listed == len(read)
    assert (out / "servers" / "page" / "3" / "index.html").is_file()
    sitemap = (out / "sitemap.xml").read_text()
    assert f"{BASE_URL}/categories/read/page/{expected_pages}/" in sitemap
    assert f"{BASE_URL}/servers/page/3/" in sitemap
    test_no_broken_internal_links_or_anchors(out)


def test_an_interrupted_in_place_build_is_followed_by_a_full_one(tmp_path: Path) -> None:
    from generator.site.output import WRITING_MARKER

    out = tmp_path / "site"
    build(SMALL_REGISTRY, out)
    assert build(SMALL_REGISTRY, out).mode == "incremental"
    (tmp_path / ".site.cache" / WRITING_MARKER).touch()
    assert build(SMALL_REGISTRY, out).mode == "full"
    assert build(SMALL_REGISTRY, out).mode == "incremental"


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_folders_left_by_a_killed_build_are_discarded_by_the_next(tmp_path: Path) -> None:
    out = tmp_path / "site"
    dead = _dead_pid()
    abandoned = [tmp_path / f".site.building-{dead}", tmp_path / f".site.old-{dead}-12345"]
    running = tmp_path / f".site.building-{os.getpid()}-elsewhere"
    unrelated = tmp_path / f".other.building-{dead}"
    for folder in [*abandoned, running, unrelated]:
        (folder / "tools" / "x").mkdir(parents=True)
        (folder / "tools" / "x" / "index.html").write_text("half-written")

    build(SMALL_REGISTRY, out)

    deadline = time.monotonic() + 30  # discarding runs in a detached process
    while any(folder.exists() for folder in abandoned) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(folder.exists() for folder in abandoned)
    assert running.exists() and unrelated.exists()
    assert (out / "index.html").is_file()


def test_sigterm_stops_a_full_build_without_leaving_its_staging_folder(tmp_path: Path) -> None:
    registry, out = tmp_path / "registry", tmp_path / "site"
    synth = Path(__file__).parents[4] / "bench" / "synth_registry.py"
    subprocess.run([sys.executable, str(synth), "5000", str(registry)], check=True, capture_output=True)
    intercept = Path(sys.executable).with_name("intercept")
    command = [str(intercept), "build", "--registry", str(registry), "--out", str(out), "--no-search"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    staging = tmp_path / f".site.building-{process.pid}"
    deadline = time.monotonic() + 60
    while not staging.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert staging.exists(), "the build never started writing"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 128 + signal.SIGTERM
    assert b"build stopped by SIGTERM" in stderr
    assert b"Traceback" not in stderr
    assert stdout == b""
    assert not staging.exists()
    assert not out.exists()  # a full build's output appears only once it is complete


def test_build_warns_once_when_base_url_is_not_set(tmp_path: Path) -> None:
    args = ["build", "--registry", str(SMALL_REGISTRY), "--no-search", "--out"]
    unset = CliRunner().invoke(main, [*args, str(tmp_path / "a")])
    assert unset.exit_code == 0, unset.output
    warnings = [line for line in unset.stderr.splitlines() if "--base-url" in line]
    assert len(warnings) == 1 and "https://example.com" in warnings[0]
    given = CliRunner().invoke(main, [*args, str(tmp_path / "b"), "--base-url", "https://tools.example.org"])
    assert given.exit_code == 0 and "--base-url" not in given.stderr


def test_install_command_option_reaches_the_use_it_block(tmp_path: Path) -> None:
    command = "pip install https://git.example.org/intercept/archive/v1.tar.gz"
    result = CliRunner().invoke(
        main,
        [
            "build",
            "--registry",
            str(SMALL_REGISTRY),
            "--no-search",
            "--out",
            str(tmp_path / "s"),
            "--base-url",
            "https://tools.example.org",
            "--install-command",
            command,
        ],
    )
    assert result.exit_code == 0, result.output
    html = (tmp_path / "s" / "servers" / "acme-jobs" / "index.html").read_text()
    assert _code_text(html, "use-install") == command + "\n"
    assert "not published on PyPI" not in html


def test_policy_language_page_names_every_key_and_operator(site: Path) -> None:
    text = " ".join(" ".join(parse_page(_page(site, pages.policy_reference_url())).text).split())
    for model, keys in KNOWN_KEYS.items():
        for key in keys:
            assert f"{key} " in text, (model, key)
    for op in OPERATORS:
        assert f"{op} " in text, op
    for example in ('"*"', "120/minute", "on_deny", "conditions", "name"):
        assert example in text
