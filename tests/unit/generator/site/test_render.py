"""Safe Markdown, Pygments highlighting shortcuts that equal Pygments, JSON-LD escaping, similar tools."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.catalog.load import load_registry
from generator.catalog.models import Category, Risk, Tool
from generator.catalog.policyfile import render_policy_file, tool_snippet
from generator.site.parsecache import ToolRef
from generator.site.render import (
    _MD,
    highlight_code,
    highlight_snippet,
    highlight_yaml_document,
    json_ld,
    markdown_html,
    plain_paragraph,
)
from generator.site.similar import SIMILAR_LIMIT, build_similar_index, name_words
from tests.unit.generator.site.site_support import SMALL_REGISTRY


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "/relative",
        "file:///etc/passwd",
        "mailto:a@b.c",
    ],
)
def test_markdown_drops_every_link_that_is_not_http(link: str) -> None:
    html = str(markdown_html(f"[x]({link})"))
    assert "href" not in html


def test_markdown_escapes_raw_html_and_keeps_http_links() -> None:
    html = str(
        markdown_html('<b onclick="x">hi</b> [ok](https://example.com/a) ![i](https://example.com/i.png)')
    )
    assert "<b" not in html and "&lt;b onclick" in html
    assert 'href="https://example.com/a" rel="nofollow noopener noreferrer ugc"' in html
    assert "<img" not in html


@pytest.mark.parametrize("category", list(Category))
@pytest.mark.parametrize(
    "name",
    [
        "cancel_run",
        "a",
        "allow",
        "rules",
        "tools",
        "x1",
        "_",
        "ZqxTool",
        "files.read",
        "..",
        "9lives",
        "y",
        "delete-all",
    ],
)
def test_snippet_highlighting_equals_pygments(category: Category, name: str) -> None:
    tool = Tool(name=name, category=category, description="d")
    snippet = tool_snippet(tool)
    assert str(highlight_snippet(snippet, name)) == str(highlight_code(snippet, "yaml"))


def test_policy_file_highlighting_equals_pygments_on_the_whole_file() -> None:
    for server in load_registry(SMALL_REGISTRY):
        text = render_policy_file(server)
        assert str(highlight_yaml_document(text)) == str(highlight_code(text, "yaml"))


def test_json_ld_cannot_close_its_script_block() -> None:
    text = str(json_ld({"a": "</script><!-- & \u2028"}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & \u2028"}


def _ref(slug: str, name: str, category: Category = Category.EXECUTE) -> ToolRef:
    return ToolRef(slug, slug.upper(), name, category, Risk.HIGH, f"{name} on {slug}")


def test_similar_tools_are_same_category_other_servers_ranked_and_capped() -> None:
    refs = [_ref(f"s{i:02d}", "cancel_run") for i in range(15)]
    refs += [
        _ref("a", "cancel_build"),
        _ref("b", "run_task"),
        _ref("c", "get_run", Category.READ),
        _ref("s00", "cancel_job"),
    ]
    index = build_similar_index(refs)
    similar = index.for_tool("s00", "cancel_run", Category.EXECUTE)
    assert len(similar) == SIMILAR_LIMIT
    assert all(t.slug != "s00" and t.category is Category.EXECUTE for t in similar)
    assert [t.name for t in similar] == ["cancel_run"] * SIMILAR_LIMIT
    assert [t.slug for t in similar] == [f"s{i:02d}" for i in range(1, 11)]
    lone = index.for_tool("a", "cancel_build", Category.EXECUTE)
    assert lone[0].name == "cancel_job" or lone[0].name == "cancel_run"
    assert all(t.slug != "a" for t in lone)
    assert index.for_tool("c", "get_run", Category.READ) == []
    assert build_similar_index(list(reversed(refs))).ranked == index.ranked


def test_name_words_split_snake_kebab_camel_and_dots() -> None:
    assert (
        name_words("cancelRun") == name_words("cancel_run") == name_words("cancel-run") == ("cancel", "run")
    )
    assert name_words("files.read") == ("files", "read")


PLAIN_ALPHABET = st.sampled_from([*"abc XYZ 019.,;:?!()[]*_`#-+=>\"'&<\\~|@$%^{}/\n\t", "é", "\u00a0"])


@settings(max_examples=3000)
@given(st.text(PLAIN_ALPHABET, max_size=40))
def test_plain_paragraph_shortcut_equals_markdown_it(text: str) -> None:
    fast = plain_paragraph(text)
    if fast is not None:
        assert fast == _MD.render(text)


INLINE_FRAGMENTS = st.sampled_from(
    [
        "word",
        "Word",
        " ",
        "1.",
        "\n",
        "`code`",
        "`a_b.c-d`",
        "`",
        "``",
        "`a b`",
        "[the guide](https://example.com/docs/x_y)",
        "[a](http://e.com)",
        "[A.](https://E.com/)",
        "[a](https://e.com/a(b))",
        "[a b](https://e.com/#frag)",
        "[x]",
        "(https://e.com)",
        "[",
        "]",
        "(",
        ")",
        "!",
        "*",
        "_",
        "#",
        "-",
        '"',
        "'",
        "<",
        "&",
        "\\",
        "https://e.com",
        ":",
    ]
)


@settings(max_examples=3000)
@given(st.lists(INLINE_FRAGMENTS, max_size=12).map("".join))
def test_shortcut_with_code_spans_and_links_equals_markdown_it(text: str) -> None:
    fast = plain_paragraph(text)
    if fast is not None:
        assert fast == _MD.render(text)


@pytest.mark.parametrize(
    "text",
    [
        "See the `label` docs or [the API guide](https://example.com/docs/label).",
        "Use `a_b` here.\n[Docs](http://x.org/a/b-c) and more.",
    ],
)
def test_shortcut_applies_to_one_word_code_and_plain_links(text: str) -> None:
    assert plain_paragraph(text) == _MD.render(text)


@pytest.mark.parametrize(
    "text", ["Cancel a running task run.", 'Get the user\'s "profile".', "a\nb", "x (y) 50%"]
)
def test_plain_paragraph_shortcut_applies_to_plain_sentences(text: str) -> None:
    assert plain_paragraph(text) == _MD.render(text)
