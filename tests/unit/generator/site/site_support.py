"""Helpers shared by the site tests: build a fixture registry, parse built HTML."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from generator.resources import templates_dir
from generator.site.build import BuildOptions, BuildResult, build_site

DATA = Path(__file__).resolve().parents[3] / "data"
SMALL_REGISTRY = DATA / "registry_small"
BASE_URL = "https://example.com"


def build(registry: Path, out: Path, search: bool = False, **kwargs: Any) -> BuildResult:
    options = BuildOptions(
        registry=registry,
        out=out,
        base_url=kwargs.pop("base_url", BASE_URL),
        search=search,
        workers=kwargs.pop("workers", 1),
        templates=templates_dir(),
        cache_dir=kwargs.pop("cache_dir", out.parent / f".{out.name}.cache"),
        **kwargs,
    )
    return build_site(options)


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass
class ParsedPage:
    ids: set[str] = field(default_factory=set)
    links: list[tuple[str, str]] = field(default_factory=list)
    """(tag.attribute, value) for every href and src."""
    json_ld: list[str] = field(default_factory=list)
    h2: list[str] = field(default_factory=list)
    headings: list[int] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    """Inline script bodies that are not JSON-LD."""
    attrs: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self._script: str | None = None
        self._buffer: list[str] = []
        self._in_h2 = False
        self._h2: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = dict(attrs)
        self.page.attrs.append((tag, data))
        if data.get("id"):
            self.page.ids.add(str(data["id"]))
        for attr in ("href", "src"):
            if data.get(attr) is not None:
                self.page.links.append((f"{tag}.{attr}", str(data[attr])))
        if tag == "script" and "src" not in data:
            self._script = data.get("type") or "text/javascript"
            self._buffer = []
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.page.headings.append(int(tag[1]))
        if tag == "h2":
            self._in_h2, self._h2 = True, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            body = "".join(self._buffer)
            (self.page.json_ld if self._script == "application/ld+json" else self.page.scripts).append(body)
            self._script = None
        if tag == "h2" and self._in_h2:
            self.page.h2.append(" ".join("".join(self._h2).split()))
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._buffer.append(data)
        else:
            self.page.text.append(data)
        if self._in_h2:
            self._h2.append(data)


def parse_page(path: Path) -> ParsedPage:
    parser = _Parser()
    parser.feed(path.read_text("utf-8"))
    parser.close()
    return parser.page


def json_ld_blocks(path: Path) -> list[Any]:
    return [json.loads(block) for block in parse_page(path).json_ld]
