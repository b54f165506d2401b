"""Registry files from scans: run spec inference, deterministic YAML, harmless scan values."""

from __future__ import annotations

from pathlib import Path

import yaml

from generator.catalog.entry import DUMMY_URL, build_server_data, dummy_value, dump_yaml, run_info_for
from generator.catalog.load import load_server_file
from tests.unit.generator.catalog.scan_support import result, tool


def test_run_spec_is_inferred_from_the_command() -> None:
    npm = run_info_for(result(command=["npx", "-y", "@demo/mcp@1.2.3", "stdio"]))
    assert (npm.package_manager, npm.package, npm.version) == ("npm", "@demo/mcp", "1.2.3")
    assert npm.args == ["stdio"]
    uvx = ["/opt/bin/uvx", "mcp-server-time==2026.1.1", "--local-timezone", "UTC"]
    pypi = run_info_for(result(command=uvx))
    assert (pypi.package_manager, pypi.package, pypi.version) == ("pypi", "mcp-server-time", "2026.1.1")
    assert pypi.args == ["--local-timezone", "UTC"]
    binary = run_info_for(result(command=["/usr/local/bin/my-server", "--flag"]))
    assert (binary.package_manager, binary.package, binary.version) == ("binary", "my-server", "1.2.3")


def test_a_new_entry_is_a_valid_registry_file_and_dumps_deterministically(tmp_path: Path) -> None:
    scanned = result(tool("list_items"), tool("delete_item"))
    data = build_server_data(scanned, "demo", env_names=["DEMO_TOKEN"])
    text = dump_yaml(data)
    assert text == dump_yaml(build_server_data(scanned, "demo", env_names=["DEMO_TOKEN"]))
    assert "&id" not in text and "*id" not in text  # identical schemas are written out, not aliased
    path = tmp_path / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    server, errors = load_server_file(path)
    assert errors == [] and server is not None
    assert server.provenance.env_names == ["DEMO_TOKEN"]
    assert server.provenance.command == ["npx", "-y", "@demo/mcp@1.2.3", "stdio"]
    assert [t.category.value for t in server.tools] == ["read", "destructive"]
    assert "category" not in data["tools"][0]


def test_dummy_values_only_ever_point_at_loopback() -> None:
    assert dummy_value("GITLAB_API_URL") == DUMMY_URL
    assert DUMMY_URL.startswith("http://127.0.0.1:")
    assert dummy_value("MYSQL_HOST") == "127.0.0.1"
    assert dummy_value("MYSQL_PORT") == "9"
    assert "127.0.0.1" not in dummy_value("GITHUB_PERSONAL_ACCESS_TOKEN")


def test_dumped_yaml_loads_back_to_the_same_data() -> None:
    listed = tool("list_items", "Lists items: all of them — even 'quoted' ones.")
    data = build_server_data(result(listed), "demo")
    assert yaml.safe_load(dump_yaml(data)) == data
