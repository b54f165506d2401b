"""The URL scheme: stable paths from validated names, safe for names that look like paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.catalog.models import Category, Risk
from generator.site import urls as pages
from generator.site.urls import UnsafeNameError, output_path, tool_segment, tool_url

NAMES = st.from_regex(r"\A[A-Za-z0-9_.\-]{1,128}\Z")


def test_urls_are_clean_and_stable() -> None:
    assert tool_url("trigger-dev", "cancel_run") == "/servers/trigger-dev/tools/cancel_run/"
    assert pages.server_url("trigger-dev") == "/servers/trigger-dev/"
    assert pages.policy_url("trigger-dev") == "/policies/trigger-dev.yaml"
    assert pages.category_url(Category.READ) == "/categories/read/"
    assert pages.category_url(Category.READ, 3) == "/categories/read/page/3/"
    assert pages.risk_url(Risk.CRITICAL, 2) == "/risk/critical/page/2/"
    assert output_path("/") == "index.html"
    assert output_path("/servers/x/tools/files.read/") == "servers/x/tools/files.read/index.html"


@pytest.mark.parametrize(
    ("name", "segment"), [("..", "~~"), (".", "~"), (".env", "~env"), ("a..b", "a..b"), ("x.", "x.")]
)
def test_leading_dots_never_form_a_relative_path(name: str, segment: str) -> None:
    assert tool_segment(name) == segment
    assert output_path(tool_url("s", name)).split("/")[3] == segment


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x" * 129, "a b", "é"])
def test_invalid_tool_names_are_refused(bad: str) -> None:
    with pytest.raises(UnsafeNameError):
        tool_url("s", bad)


@pytest.mark.parametrize("bad", ["../etc", "UPPER", "a/b", "-x", ""])
def test_invalid_slugs_are_refused(bad: str) -> None:
    with pytest.raises(UnsafeNameError):
        pages.server_url(bad)


@pytest.mark.parametrize("bad", ["/a/../b/", "//x/", "relative/", "/a/./b/"])
def test_output_path_refuses_unclean_urls(bad: str) -> None:
    with pytest.raises(UnsafeNameError):
        output_path(bad)


@given(NAMES, NAMES)
def test_segments_are_one_to_one_and_never_dot_segments(a: str, b: str) -> None:
    seg_a, seg_b = tool_segment(a), tool_segment(b)
    assert seg_a not in {".", ".."} and not seg_a.startswith(".")
    assert (seg_a == seg_b) == (a == b)
