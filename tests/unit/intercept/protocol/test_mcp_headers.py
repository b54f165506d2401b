"""The 2026-07-28 mirrored headers: encoding, the listener's header-versus-body comparison, and the
checks on every value the proxy writes into a header (`--header`, protocol versions)."""

from __future__ import annotations

import pytest

from intercept.protocol.mcp_headers import (
    UnsafeHeader,
    decode_value,
    encode_value,
    is_stateless_version,
    mismatch,
    parse_header_option,
    request_headers,
    valid_field_value,
    valid_protocol_version,
    valid_session_id,
)

CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "read_file", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}},
}


@pytest.mark.parametrize("value", ["echo", "naïve", " padded ", "line\nbreak", "=?base64?Zm9v?="])
def test_values_round_trip(value: str) -> None:
    encoded = encode_value(value)
    assert encoded.isascii() and "\n" not in encoded
    assert decode_value(encoded) == value


def test_corrupt_base64_never_matches() -> None:
    assert decode_value("=?base64?not*base64?=") == "=?base64?not*base64?="  # not the sentinel form
    assert decode_value("=?base64?Zm9vY?=") is None


@pytest.mark.parametrize(
    ("sent", "wrong"),
    [
        ({}, None),
        ({"mcp-method": "tools/call", "mcp-name": "read_file"}, None),
        ({"mcp-method": "tools/call", "mcp-name": encode_value("read_file")}, None),
        ({"mcp-method": "tools/call", "mcp-name": "delete_file"}, "mcp-name"),
        ({"mcp-method": "tools/list", "mcp-name": "read_file"}, "mcp-method"),
        ({"mcp-method": "tools/call"}, "mcp-name"),
        ({"mcp-name": "READ_FILE"}, "mcp-name"),
        ({"mcp-protocol-version": "2026-07-28"}, None),
        ({"mcp-protocol-version": "2025-11-25"}, "mcp-protocol-version"),
    ],
)
def test_mismatch_names_the_first_disagreeing_header(sent: dict[str, str], wrong: str | None) -> None:
    assert mismatch(sent, CALL) == wrong


def test_a_session_version_header_is_not_compared_with_a_body_that_names_none() -> None:
    legacy = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert mismatch({"mcp-protocol-version": "2025-11-25"}, legacy) is None
    assert mismatch({"mcp-method": "tools/list"}, [legacy]) == "mcp-method"  # batches name no method


def test_stateless_versions() -> None:
    assert is_stateless_version("2026-07-28") and is_stateless_version("2027-01-01")
    assert not is_stateless_version("2025-11-25") and not is_stateless_version(None)


def test_only_revision_dates_and_visible_ascii_session_ids_are_valid() -> None:
    assert valid_protocol_version("2025-06-18")
    for bad in (
        "2025-06-18\r\n",
        "2025-6-18",
        "latest",
        "",
        "\u0662\u0660\u0662\u0665-06-18",
        None,
        20250618,
    ):
        assert not valid_protocol_version(bad)
    assert not is_stateless_version("9999-junk")  # would compare above 2026-07-28 as a string
    assert valid_session_id("a-Z_0.9~!")
    for bad in ("", "a b", "a\tb", "a\x7fb", "caf\u00e9", "a\r\nb", None):
        assert not valid_session_id(bad)
    assert valid_field_value("Bearer a\tb") and valid_field_value("")
    for bad in (" lead", "trail ", "a\rb", "a\nb", "a\x00b", "a\x1bb", "\u00e9"):
        assert not valid_field_value(bad)


def test_request_headers_follow_the_2026_07_28_rules() -> None:
    assert request_headers({"method": "tools/call", "params": {"name": "echo"}}) == {
        "mcp-method": "tools/call",
        "mcp-name": "echo",
    }
    assert (
        request_headers({"method": "resources/read", "params": {"uri": "file:///a"}})["mcp-name"]
        == "file:///a"
    )
    assert request_headers({"method": "tools/list"}) == {"mcp-method": "tools/list"}
    assert request_headers({"id": 1, "result": {}}) == {}
    assert request_headers([{"method": "ping"}]) == {}
    wrapped = request_headers({"method": "tools/call", "params": {"name": "bad\nnamé"}})["mcp-name"]
    assert wrapped.startswith("=?base64?") and decode_value(wrapped) == "bad\nnamé"
    meta = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}
    assert request_headers({"method": "tools/list", "params": meta})["mcp-protocol-version"] == "2026-07-28"


def test_header_option_parsing() -> None:
    assert parse_header_option("Authorization: Bearer abc") == ("Authorization", "Bearer abc")
    assert parse_header_option("X-Key:\ta\tb ") == ("X-Key", "a\tb")
    assert parse_header_option("X-Empty:") == ("X-Empty", "")


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ("no colon s3cret", "Name: value"),
        (": s3cret", "Name: value"),
        ("Bad Name: s3cret", "HTTP token"),
        ("X\r\nInjected: s3cret", "HTTP token"),
        ("Caf\u00e9: s3cret", "HTTP token"),
        ("X: s3cret\r\nInjected: 1", "control characters"),
        ("X: s3cret\n", "control characters"),
        ("X: s3\x00cret", "control characters"),
        ("X: s3cret\x1b[2J", "control characters"),
        ("X: s3cret\x7f", "control characters"),
        ("X: s3cr\u00e9t", "non-ASCII"),
        ("Host: s3cret", "sets this header itself"),
        ("Transfer-Encoding: s3cret", "sets this header itself"),
        ("MCP-Session-Id: s3cret", "sets this header itself"),
    ],
)
def test_header_options_that_could_break_a_request_are_refused_without_quoting_the_value(
    option: str, problem: str
) -> None:
    with pytest.raises(ValueError, match="--header") as refused:
        parse_header_option(option)
    assert problem in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_a_protocol_version_that_is_not_a_revision_date_never_becomes_a_header() -> None:
    for version in ("2026-07-28\r\nX: 1", "latest", "2026-07-28 ", "\u0662\u0660\u0662\u0666-07-28"):
        message = {
            "method": "tools/list",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": version}},
        }
        with pytest.raises(UnsafeHeader, match="YYYY-MM-DD") as refused:
            request_headers(message)
        assert version not in str(refused.value)
