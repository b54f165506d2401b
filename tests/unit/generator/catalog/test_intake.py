"""Intake without the network: package specs, slugs, metadata read as files, the registry document."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.catalog.intake import (
    Installed,
    Intake,
    PackageSpec,
    _npm_repository,
    _pypi_installed,
    _suggested_command,
    registry_document,
    slug_for,
    spec_from_command,
)
from generator.catalog.load import validate_server_data
from tests.unit.generator.catalog.scan_support import result, tool


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("npm:@scope/pkg@1.2.3", PackageSpec("npm", "@scope/pkg", "1.2.3")),
        ("npm:@scope/pkg", PackageSpec("npm", "@scope/pkg", None)),
        ("npm:plain", PackageSpec("npm", "plain", None)),
        ("pypi:mcp-server-time==2026.10.19", PackageSpec("pypi", "mcp-server-time", "2026.10.19")),
        ("pypi:awslabs.x-mcp-server@1.0", PackageSpec("pypi", "awslabs.x-mcp-server", "1.0")),
    ],
)
def test_package_specs(text: str, expected: PackageSpec) -> None:
    assert PackageSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["pkg", "cargo:x", "npm:", "npm:a b", "pypi:x@1 2", "npm:x@>=1", "npm:../x"])
def test_bad_package_specs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        PackageSpec.parse(text)


def test_npx_and_uvx_commands_name_their_package() -> None:
    assert spec_from_command(["npx", "-y", "@a/b@1.0", "stdio"]) == (
        PackageSpec("npm", "@a/b", "1.0"),
        ["stdio"],
    )
    assert spec_from_command(["/usr/bin/uvx", "tool==2.0"]) == (PackageSpec("pypi", "tool", "2.0"), [])
    assert spec_from_command(["python", "server.py"]) is None
    assert spec_from_command(["npx", "pkg"]) is None  # without -y npx would ask; not an intake form


def test_slugs_drop_scope_and_mcp_affixes_and_stay_unique() -> None:
    assert slug_for("@modelcontextprotocol/server-github", set()) == "github"
    assert slug_for("tavily-mcp", set()) == "tavily"
    assert slug_for("mcp-server-kubernetes", set()) == "kubernetes"
    assert slug_for("awslabs-aws-location-mcp-server", set()) == "aws-location"
    assert slug_for("@zereight/mcp-gitlab", {"gitlab"}) == "zereight-gitlab"
    assert slug_for("gitlab-mcp", {"gitlab"}) == "gitlab-mcp"
    assert slug_for("gitlab-mcp", {"gitlab", "gitlab-mcp"}) == "gitlab-mcp-2"
    assert slug_for("@drawio/mcp", set()) == "drawio"
    assert slug_for("@acme/mcp-server", {"acme"}) == "acme-mcp-server"


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ({"type": "git", "url": "git+https://github.com/a/b.git"}, "https://github.com/a/b"),
        ("github:a/b", "https://github.com/a/b"),
        ("a/b", "https://github.com/a/b"),
        ("git@github.com:a/b.git", "https://github.com/a/b"),
        ("git://github.com/a/b.git", "https://github.com/a/b"),
        ("file:../local", None),
        (None, None),
    ],
)
def test_npm_repository_urls(value: object, url: str | None) -> None:
    assert _npm_repository(value) == url


def test_pypi_metadata_and_console_script_are_read_as_files(tmp_path: Path) -> None:
    venv = tmp_path / "prefix" / "venv"
    dist = venv / "lib" / "python3.11" / "site-packages" / "acme_mcp-1.4.0.dist-info"
    dist.mkdir(parents=True)
    (venv / "bin").mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-mcp\nVersion: 1.4.0\nSummary: Acme tools\n"
        "Project-URL: Homepage, https://acme.example\nProject-URL: Repository, https://github.com/acme/mcp\n"
    )
    (dist / "entry_points.txt").write_text("[console_scripts]\nacme-helper = x:y\nacme-mcp = acme:main\n")
    installed = _pypi_installed(PackageSpec("pypi", "Acme_MCP"), venv, "/usr/bin/python3")
    assert installed.version == "1.4.0"
    assert installed.command == [str(venv / "bin" / "acme-mcp")]
    assert installed.repository == "https://github.com/acme/mcp"
    assert installed.homepage == "https://acme.example"
    assert installed.user_command(["stdio"]) == ["uvx", "Acme_MCP==1.4.0", "stdio"]


def test_usage_offering_a_serving_command_is_recognised() -> None:
    assert _suggested_command("Usage: x [OPTIONS] COMMAND\nCommands:\n  sse\n  stdio") == "stdio"
    assert (
        _suggested_command("error: argument transport: invalid choice (choose from 'stdio', 'sse')")
        == "stdio"
    )
    assert _suggested_command("Run 'xcodebuildmcp mcp' to start the MCP server.") == "mcp"
    assert _suggested_command("Error: API key required") is None
    assert _suggested_command("usage: uses stdio-like pipes") is None
    assert _suggested_command("Usage: start the MCP server from /opt/mcp") is None


def test_registry_document_has_provenance_and_package_metadata() -> None:
    spec = PackageSpec("npm", "@acme/mcp", None)
    installed = Installed(
        spec, "2.0.1", ["/p/bin/acme"], (), "https://github.com/acme/mcp", "https://acme.example", "Acme."
    )
    scanned = result(tool("get_thing"), command=installed.user_command([]))
    data = registry_document(Intake(installed, scanned, ["ACME_TOKEN"]), "acme")
    assert list(data)[:6] == ["slug", "name", "description", "repository", "homepage", "run"]
    assert data["run"]["package"] == "@acme/mcp" and data["run"]["version"] == "2.0.1"
    assert data["provenance"]["command"] == ["npx", "-y", "@acme/mcp@2.0.1"]
    assert data["provenance"]["env_names"] == ["ACME_TOKEN"]
    assert "sandbox" in data["provenance"]["notes"]
    assert "category" not in data["tools"][0]
    _, problems = validate_server_data(data)
    assert problems == []
