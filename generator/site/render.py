"""Turning untrusted text into safe HTML: the Jinja environment, Markdown and Pygments highlighting."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from html import unescape as html_unescape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import BashLexer, JsonLexer, YamlLexer

SAFE_LINK_RE = re.compile(r"^https?://[^\s<>\"'`\\]+$", re.IGNORECASE)
"""The only links a description may carry: absolute http(s), no quotes or whitespace to break out with."""

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = "ZqxToolNamePlaceholderQz"


def safe_link(url: str) -> bool:
    return bool(SAFE_LINK_RE.match(url))


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    # Images would make the reader's browser fetch from third parties; text links stay.
    md.disable(["image", "html_block", "html_inline"])
    md.validateLink = safe_link  # type: ignore[method-assign]

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer ugc")
        return str(renderer.renderToken(tokens, idx, options, env))

    md.add_render_rule("link_open", link_open)
    # Headings inside a description would break the page's heading order; render them as paragraphs.
    md.disable(["heading", "lheading"])
    return md


_MD = _markdown()


_PLAIN_LINE = re.compile(r"^[A-Za-z0-9(\"'](?:[^\\`*_\[\]!<>&~|#\n\t]*[A-Za-z0-9.,;:?)\"'%])?$")
_BLOCK_START = re.compile(r"^(?:\d+[.)]|[-+=])")


_INLINE = re.compile(
    r"(?<!`)`(?P<code>[A-Za-z0-9_.-]+)`(?!`)"
    r"|\[(?P<text>[A-Za-z0-9](?:[A-Za-z0-9 ,.'-]*[A-Za-z0-9.])?)\]"
    r"\((?P<url>https?://[a-z0-9.-]+(?:/[A-Za-z0-9._~/#-]*)?)\)"
)
"""A code span of one word, or a link with plain text to a plain http(s) address."""
_LINK_REL = ' rel="nofollow noopener noreferrer ugc"'


def plain_paragraph(text: str) -> str | None:
    """markdown-it's output for one paragraph of plain sentences, without running the parser.

    Besides plain text, a line may hold one-word code spans and links with plain text to plain
    http(s) addresses, the Markdown most descriptions use. Anything else returns None. The tests
    check this equals markdown-it's rendering on every input for which it returns a value.
    """
    if not text:
        return None
    out = []
    for line in text.split("\n"):
        if "`" in line or "[" in line:
            parts: list[str] = []
            last = 0
            skeleton = []
            for match in _INLINE.finditer(line):
                plain = line[last : match.start()]
                skeleton.append(plain + "x")
                parts.append(_escape_plain(plain))
                code, label, url = match.group("code", "text", "url")
                if code is not None:
                    parts.append(f"<code>{code}</code>")
                else:
                    parts.append(f'<a href="{url}"{_LINK_REL}>{_escape_plain(label)}</a>')
                last = match.end()
            skeleton.append(line[last:])
            parts.append(_escape_plain(line[last:]))
            checked = "".join(skeleton)
            rendered = "".join(parts)
        else:
            checked, rendered = line, _escape_plain(line)
        if not _PLAIN_LINE.match(checked) or _BLOCK_START.match(checked):
            return None
        out.append(rendered)
    return "<p>" + "\n".join(out) + "</p>\n"


def _escape_plain(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@lru_cache(maxsize=4096)
def markdown_html(text: str) -> Markup:
    """A server's description as HTML: CommonMark, raw HTML shown as text, links only http(s)."""
    fast = plain_paragraph(text)
    return Markup(fast if fast is not None else _MD.render(text))


_MARKUP_CHARS = re.compile(r"[`*_\[\]<>&\\]")


@lru_cache(maxsize=65536)
def inline_markdown(text: str) -> Markup:
    """One line of untrusted text with its inline Markdown (code, emphasis, http(s) links) as HTML.

    Raw HTML is shown as text and links other than http(s) stay text, as in `markdown_html`."""
    if not _MARKUP_CHARS.search(text):
        return Markup(_escape_plain(text))
    return Markup(_MD.renderInline(text))


def plain_text(text: str) -> str:
    """One line of inline Markdown as the text a reader sees, for meta descriptions and titles."""
    if not _MARKUP_CHARS.search(text):
        return text
    html = _MD.renderInline(text)
    return html_unescape(re.sub(r"<[^>]*>", "", html))


_FORMATTER = HtmlFormatter(nowrap=True)
_LEXERS: dict[str, Lexer] = {"yaml": YamlLexer(), "json": JsonLexer(), "bash": BashLexer()}


@lru_cache(maxsize=8192)
def _highlight_cached(code: str, language: str) -> str:
    return str(highlight(code, _LEXERS[language], _FORMATTER))


def highlight_code(code: str, language: str) -> Markup:
    """Pygments HTML (spans only) for code; the caller wraps it in <pre><code>."""
    return Markup(_highlight_cached(code, language))


def highlight_snippet(code: str, tool_name: str) -> Markup:
    """Highlight a tool's policy snippet, reusing the highlighting of snippets of the same shape.

    Snippets differ per tool only in the tool's name. For a plain identifier name, the YAML lexer
    tokenises any other identifier the same way, so the snippet is highlighted once per shape with a
    placeholder and the (escape-free) name substituted back. Other names take the direct path.
    """
    if _IDENTIFIER_RE.match(tool_name) and _PLACEHOLDER not in code and _PLACEHOLDER.find(tool_name) < 0:
        generic = code.replace(tool_name, _PLACEHOLDER)
        html = _highlight_cached(generic, "yaml")
        if html.count(_PLACEHOLDER) == generic.count(_PLACEHOLDER):
            return Markup(html.replace(_PLACEHOLDER, tool_name))
    return highlight_code(code, "yaml")


_COMMENT_LINE = re.compile(r"^( *)(#.*)$")
_BLOCK_KEY = re.compile(r"^ *([A-Za-z_][A-Za-z0-9_]*):\n")


def highlight_yaml_document(text: str) -> Markup:
    """Pygments HTML for a long YAML file of our own making, built from cached pieces.

    Comment and blank lines are written out as Pygments writes them (the tests compare against
    highlighting the whole file); each run of other lines is highlighted with Pygments, runs that
    are one tool's block sharing the highlighting of every block of the same shape.
    """
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            chunk = "".join(run)
            key = _BLOCK_KEY.match(chunk)
            out.append(str(highlight_snippet(chunk, key.group(1)) if key else highlight_code(chunk, "yaml")))
            run.clear()

    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        comment = _COMMENT_LINE.match(body)
        if comment or not body.strip():
            flush()
            if comment:
                space, note = comment.groups()
                out.append(
                    (f'<span class="w">{space}</span>' if space else "")
                    + f'<span class="c1">{_pygments_escape(note)}</span>'
                )
            out.append(line[len(body) :])
        else:
            run.append(line)
    flush()
    return Markup("".join(out))


def _pygments_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def pygments_css() -> str:
    """Token colours for light mode, and for dark mode both by system preference and by toggle."""
    light = _token_rules(_style_defs("default"), "")
    dark = _style_defs("github-dark")
    toggled = _token_rules(dark, ':root[data-theme="dark"] ')
    system = _token_rules(dark, ':root:not([data-theme="light"]) ')
    return (
        "/* Generated by Pygments; light theme 'default', dark theme 'github-dark'. */\n"
        f"{light}\n{toggled}\n@media (prefers-color-scheme: dark) {{\n{system}\n}}\n"
    )


def _style_defs(style: str) -> str:
    return str(HtmlFormatter(style=style).get_style_defs(".hl"))  # type: ignore[no-untyped-call]


def _token_rules(css: str, prefix: str) -> str:
    # Only per-token colours; the page's own stylesheet sets code-block background and text colour.
    return "\n".join(prefix + line for line in css.splitlines() if line.startswith(".hl ."))


def json_ld(data: Any) -> Markup:
    """JSON for a <script type="application/ld+json"> block, with nothing that could close the tag."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def make_environment(templates: Path, bytecode_cache: Path | None = None) -> Environment:
    if bytecode_cache is not None:
        bytecode_cache.mkdir(parents=True, exist_ok=True)
    env = Environment(
        bytecode_cache=FileSystemBytecodeCache(str(bytecode_cache)) if bytecode_cache is not None else None,
        loader=FileSystemLoader(str(templates)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        cache_size=-1,
    )
    env.globals["escape"] = escape
    return env
