"""`intercept pin`'s in-place edit: only pin lines change, byte for byte, or nothing is written."""

from __future__ import annotations

import pytest

from intercept.pinfile import compare, write_pins
from intercept.policy import load_policy_text
from intercept.util.errors import InputError

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
OLD = "sha256:" + "0" * 64

TEXT = f"""# reviewed on Monday\r
default: deny   # keep this\r
hide: [secret]\r
tools:\r
  # the clock\r
  get_time:\r
    rules:\r
      - action: allow   # fine\r
\r
  "convert":\r
    # pinned before\r
    pin:   "{OLD}"  # old\r
    rules: []\r
  unlisted_here:\r
    rules:\r
      - action: deny\r
# the end\r
"""


def test_pins_are_written_and_everything_else_kept_byte_for_byte() -> None:
    policy = load_policy_text(TEXT)
    edited, report = write_pins(TEXT, policy, {"get_time": A, "convert": B, "new_tool": A}, "p.yaml")
    assert report.pinned == ["convert", "get_time"]
    assert report.added == ["new_tool"] and report.removed == []
    expected = TEXT.replace("  get_time:\r\n", f'  get_time:\r\n    pin: "{A}"\r\n').replace(
        f'pin:   "{OLD}"  # old', f'pin:   "{B}"  # old'
    )
    assert edited == expected
    assert load_policy_text(edited).pins() == {"get_time": A, "convert": B}


def test_nothing_to_change_returns_the_text_itself() -> None:
    text = f'tools:\n  t:\n    pin: "{A}"\n'
    edited, report = write_pins(text, load_policy_text(text), {"t": A}, "p.yaml")
    assert edited is text and report.pinned == [] and not report.drift


def test_compare_reports_changed_added_and_removed() -> None:
    entries = "".join(f'  {t}:\n    pin: "{A}"\n' for t in ("kept", "moved", "gone"))
    text = "hide: [hidden]\ntools:\n" + entries
    report = compare(load_policy_text(text), {"kept": A, "moved": B, "new": A, "hidden": A})
    assert (report.changed, report.added, report.removed) == (["moved"], ["new"], ["gone"])
    assert report.drift


@pytest.mark.parametrize(
    "text",
    [
        "tools: {t: {rules: []}}\n",
        "tools:\n  t: {rules: []}\n",
        "tools:\n  t:\n    pin:\n      " + '"' + OLD + '"\n',
    ],
)
def test_what_cannot_be_edited_safely_is_an_error(text: str) -> None:
    with pytest.raises(InputError, match=r"p\.yaml"):
        write_pins(text, load_policy_text(text), {"t": A}, "p.yaml")
