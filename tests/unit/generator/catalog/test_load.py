"""Registry files load into models; every problem is located by file, tool and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.catalog.load import REGISTRY_FILE_MAX_BYTES, RegistryError, load_registry, load_server_file
from generator.catalog.models import Category, Risk
from generator.catalog.risk import assess
from generator.resources import registry_dir

BASE: dict[str, Any] = {
    "slug": "acme",
    "name": "Acme",
    "repository": "https://github.com/acme/mcp",
    "homepage": "https://acme.example",
    "tags": ["jobs"],
    "run": {"package_manager": "npm", "package": "@acme/mcp", "version": "1.2.3", "args": ["stdio"]},
    "provenance": {"method": "scan", "obtained_at": "2026-11-26T00:00:00Z", "command": ["npx", "-y", "x"]},
    "tools": [
        {"name": "list_jobs", "description": "List jobs.", "category": "read"},
        {
            "name": "cancel_job",
            "description": "Cancel a job.",
            "category": "execute",
            "input_schema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
        },
    ],
}


def server_data(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def write(directory: Path, data: Any, name: str | None = None) -> Path:
    slug = data.get("slug", "x") if isinstance(data, dict) else "x"
    path = directory / (name or f"{slug}.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def errors_for(tmp_path: Path, data: Any, name: str | None = None) -> list[str]:
    path = write(tmp_path, data, name)
    server, errors = load_server_file(path)
    assert server is None
    return [e.render(path.name) for e in errors]


def test_valid_file_loads(tmp_path: Path) -> None:
    server, errors = load_server_file(write(tmp_path, server_data()))
    assert errors == [] and server is not None
    assert server.slug == "acme" and [t.name for t in server.tools] == ["list_jobs", "cancel_job"]
    cancel = server.tool("cancel_job")
    assert cancel is not None and assess(cancel).level is Risk.HIGH and cancel.required_params == ["id"]
    assert server.run.command() == ["npx", "-y", "@acme/mcp@1.2.3", "stdio"]


def test_shipped_registry_loads_and_trigger_dev_is_curated() -> None:
    registry = load_registry(registry_dir())
    trigger = registry.by_slug("trigger-dev")
    assert trigger is not None and trigger.run.command() == ["npx", "-y", "trigger.dev@4.8.3", "mcp"]
    cancel = trigger.tool("cancel_run")
    assert cancel is not None and cancel.category is Category.EXECUTE
    assert assess(cancel).level is Risk.CRITICAL, "its environment argument can be production"
    assert len(trigger.tools) == 55


def test_duplicate_tool_names(tmp_path: Path) -> None:
    tools = [*BASE["tools"], {"name": "list_jobs", "description": "again", "category": "read"}]
    (error,) = errors_for(tmp_path, server_data(tools=tools))
    assert "acme.yaml: tools: duplicate tool names: list_jobs (fix: list each tool once)" in error


def test_slug_that_does_not_match_the_file_name(tmp_path: Path) -> None:
    (error,) = errors_for(tmp_path, server_data(), name="other.yaml")
    assert error.endswith(
        "other.yaml: slug: slug 'acme' does not match the file name 'other.yaml' "
        "(fix: rename the file to acme.yaml or set slug: other)"
    )


def test_slug_mismatch_is_reported_with_other_errors(tmp_path: Path) -> None:
    errors = errors_for(tmp_path, server_data(name=""), name="other.yaml")
    assert len(errors) == 2 and "does not match the file name" in errors[0] and "name" in errors[1]


@pytest.mark.parametrize("slug", ["Acme", "acme_x", "-acme", "acme-", "a" * 65, "ac me"])
def test_bad_slug(tmp_path: Path, slug: str) -> None:
    errors = errors_for(tmp_path, server_data(slug=slug), name="bad.yaml")
    assert any(f"slug: slug {slug!r} is invalid" in e for e in errors), errors


def test_risk_override_without_reason(tmp_path: Path) -> None:
    tools = [{"name": "list_jobs", "description": "List.", "category": "read", "risk": "high"}]
    (error,) = errors_for(tmp_path, server_data(tools=tools))
    assert (
        "tools[0] (list_jobs): risk 'high' is set by hand for a read tool but risk_reason is missing" in error
    )
    assert "add risk_reason" in error


def test_risk_override_with_reason_loads(tmp_path: Path) -> None:
    tools = [
        {
            "name": "list_jobs",
            "description": "List.",
            "category": "read",
            "risk": "high",
            "risk_reason": "lists secrets",
        }
    ]
    server, errors = load_server_file(write(tmp_path, server_data(tools=tools)))
    assert errors == [] and server is not None and assess(server.tools[0]).level is Risk.HIGH


def test_any_hand_set_risk_needs_a_reason(tmp_path: Path) -> None:
    tools = [{"name": "list_jobs", "description": "List.", "category": "read", "risk": "low"}]
    (error,) = errors_for(tmp_path, server_data(tools=tools))
    assert "risk_reason is missing" in error


@pytest.mark.parametrize("name", ["bad name", "x" * 129, "", "tool/x", "caf\u00e9"])
def test_bad_tool_name(tmp_path: Path, name: str) -> None:
    tools = [{"name": name, "description": "d", "category": "read"}]
    errors = errors_for(tmp_path, server_data(tools=tools))
    assert any(".name: tool name" in e and "1-128 characters" in e for e in errors), errors


def test_unknown_keys_everywhere_with_did_you_mean(tmp_path: Path) -> None:
    data = server_data(homepag="https://x.example")
    data["run"]["transprt"] = "stdio"
    data["provenance"]["methd"] = "scan"
    data["tools"][1]["catgory_reason"] = "x"
    errors = errors_for(tmp_path, data)
    assert any(
        "acme.yaml: (top level): unknown key 'homepag' (fix: did you mean 'homepage'?)" in e for e in errors
    ), errors
    assert any("run: unknown key 'transprt' (fix: did you mean 'transport'?)" in e for e in errors)
    assert any("provenance: unknown key 'methd' (fix: did you mean 'method'?)" in e for e in errors)
    expected = "tools[1] (cancel_job): unknown key 'catgory_reason' (fix: did you mean 'category_reason'?)"
    assert any(expected in e for e in errors)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("category", "dangerous", "tools[0] (list_jobs).category: invalid value 'dangerous'"),
        ("risk", "extreme", "tools[0] (list_jobs).risk: invalid value 'extreme'"),
        ("summary", "two\nlines", "tools[0] (list_jobs).summary: summary must be one line"),
        ("summary", "x" * 201, "tools[0] (list_jobs).summary: String should have at most 200 characters"),
        ("input_schema", "object", "tools[0] (list_jobs).input_schema: Input should be a valid dictionary"),
    ],
)
def test_bad_tool_field(tmp_path: Path, field: str, value: Any, message: str) -> None:
    tools = [{"name": "list_jobs", "description": "List.", "category": "read", field: value}]
    errors = errors_for(tmp_path, server_data(tools=tools))
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize(
    ("section", "field", "value", "message"),
    [
        ("run", "package_manager", "cargo", "run.package_manager: invalid value 'cargo'"),
        ("run", "package", "x; rm -rf /", "run.package: 'x; rm -rf /' must be a single token"),
        ("run", "version", "-1", "run.version: '-1' must be a single token"),
        ("run", "transport", "carrier-pigeon", "run.transport: invalid value 'carrier-pigeon'"),
        ("provenance", "method", "guess", "provenance.method: invalid value 'guess'"),
        (
            "provenance",
            "obtained_at",
            "yesterday",
            "provenance.obtained_at: Input should be a valid datetime",
        ),
    ],
)
def test_bad_run_and_provenance_fields(
    tmp_path: Path, section: str, field: str, value: str, message: str
) -> None:
    data = server_data()
    data[section][field] = value
    errors = errors_for(tmp_path, data)
    assert any(message in e for e in errors), errors


@pytest.mark.parametrize("field", ["repository", "homepage"])
def test_non_http_urls_are_refused(tmp_path: Path, field: str) -> None:
    errors = errors_for(tmp_path, server_data(**{field: "javascript:alert(1)"}))
    assert any(f"{field}: 'javascript:alert(1)' is not an http(s) URL" in e for e in errors), errors


@pytest.mark.parametrize("field", ["slug", "name", "run", "provenance", "tools"])
def test_missing_required_field(tmp_path: Path, field: str) -> None:
    data = server_data()
    del data[field]
    errors = errors_for(tmp_path, data)
    assert any(f"{field}: required field is missing" in e for e in errors), errors


def test_alias_bomb_in_registry_file(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(9)
    ]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    server, errors = load_server_file(path)
    assert server is None and len(errors) == 1 and "aliases" in errors[0].message


def test_oversized_registry_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.write(b"slug: huge\n")
        handle.truncate(REGISTRY_FILE_MAX_BYTES + 1)
    server, errors = load_server_file(path)
    assert server is None and "over the 8,388,608-byte limit" in errors[0].message


def test_non_utf8_registry_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"slug: latin\nname: Caf\xe9\n")
    server, errors = load_server_file(path)
    assert server is None and "not UTF-8" in errors[0].message


def test_non_mapping_registry_file(tmp_path: Path) -> None:
    (error,) = errors_for(tmp_path, ["a", "b"], name="list.yaml")
    assert "(top level): a registry file must be a mapping" in error


def test_duplicate_yaml_key_in_registry_file(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("slug: dup\nname: A\nname: B\n", encoding="utf-8")
    server, errors = load_server_file(path)
    assert server is None and "duplicate key 'name'" in errors[0].message


def test_every_error_in_every_file_is_reported_at_once(tmp_path: Path) -> None:
    good = server_data(slug="good")
    write(tmp_path, good)
    bad_tools = server_data(slug="bad-tools")
    bad_tools["tools"][0]["category"] = "weird"
    bad_tools["tools"][1]["risk"] = "low"
    write(tmp_path, bad_tools)
    write(tmp_path, server_data(slug="misnamed"), name="renamed.yaml")
    (tmp_path / "broken.yaml").write_text("slug: [\n", encoding="utf-8")
    with pytest.raises(RegistryError) as caught:
        load_registry(tmp_path)
    rendered = caught.value.render().splitlines()
    assert len(rendered) == 4, rendered
    assert any(
        line.startswith(str(tmp_path / "bad-tools.yaml") + ": tools[0] (list_jobs).category:")
        for line in rendered
    )
    assert any(
        line.startswith(str(tmp_path / "bad-tools.yaml") + ": tools[1] (cancel_job): risk 'low'")
        for line in rendered
    )
    assert any(line.startswith(str(tmp_path / "renamed.yaml") + ": slug:") for line in rendered)
    assert any(line.startswith(str(tmp_path / "broken.yaml") + ": line 2") for line in rendered)
    assert {p.path.name for p in caught.value.problems} == {"bad-tools.yaml", "renamed.yaml", "broken.yaml"}


def test_hostile_tool_name_in_error_is_escaped(tmp_path: Path) -> None:
    tools = [{"name": "x\n\x1b[31mred", "description": "d", "category": "read"}]
    errors = errors_for(tmp_path, server_data(tools=tools))
    assert all("\x1b" not in e for e in errors)
    assert any("tools[0] (x\\n\\x1b[31mred).name" in e for e in errors), errors


def test_missing_registry_directory(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="registry directory not found"):
        load_registry(tmp_path / "nope")


def test_placeholders_are_shown_and_scan_values_are_used_only_to_scan(tmp_path: Path) -> None:
    run = {**BASE["run"], "args": ["--api-key=<ACME_KEY>", "stdio"], "scan_values": {"ACME_KEY": "sk_test_x"}}
    server, errors = load_server_file(write(tmp_path, server_data(run=run)))
    assert errors == [] and server is not None
    assert server.run.command() == ["npx", "-y", "@acme/mcp@1.2.3", "--api-key=<ACME_KEY>", "stdio"]
    assert server.run.scan_command() == ["npx", "-y", "@acme/mcp@1.2.3", "--api-key=sk_test_x", "stdio"]


@pytest.mark.parametrize(
    ("args", "scan_values", "message"),
    [
        (["--api-key=<ACME_KEY>"], {}, "run: args or env use <ACME_KEY> but scan_values has no value for it"),
        (["stdio"], {"ACME_KEY": "x"}, "run: scan_values has ACME_KEY, which no argument uses"),
    ],
)
def test_placeholders_and_scan_values_must_match(
    tmp_path: Path, args: list[str], scan_values: dict[str, str], message: str
) -> None:
    run = {**BASE["run"], "args": args, "scan_values": scan_values}
    errors = errors_for(tmp_path, server_data(run=run))
    assert any(message in e and "fix:" in e for e in errors), errors


def test_shipped_run_commands_show_placeholders_never_scan_values() -> None:
    registry = load_registry(registry_dir())
    with_values = [s for s in registry.servers if s.run.scan_values]
    assert with_values, "the shipped registry has servers that need a key to start"
    for server in registry.servers:
        shown = " ".join(server.run.command())
        assert "dummy" not in shown, server.slug
        for value in server.run.scan_values.values():
            assert value not in shown, server.slug
            assert value not in " ".join(server.provenance.command), server.slug
            assert value not in " ".join(server.run.env.values()), server.slug


def test_env_values_take_placeholders_too(tmp_path: Path) -> None:
    run = {
        **BASE["run"],
        "env": {"ACME_URL": "<ACME_URL>"},
        "scan_values": {"ACME_URL": "http://127.0.0.1:9"},
    }
    server, errors = load_server_file(write(tmp_path, server_data(run=run)))
    assert errors == [] and server is not None
    assert server.run.env == {"ACME_URL": "<ACME_URL>"}
    assert server.run.scan_env() == {"ACME_URL": "http://127.0.0.1:9"}
    assert "127.0.0.1" not in " ".join(server.run.command())


def test_a_classified_tools_risk_override_needs_a_reason(tmp_path: Path) -> None:
    tools = [{"name": "list_jobs", "description": "List jobs.", "risk": "high"}]
    (error,) = errors_for(tmp_path, server_data(tools=tools))
    assert (
        "tools[0] (list_jobs): risk 'high' is set by hand for a read tool but risk_reason is missing" in error
    )
    assert "add risk_reason" in error


def test_every_tool_of_a_loaded_server_has_a_category_and_evidence(tmp_path: Path) -> None:
    tools = [{"name": "delete_job", "description": "Deletes a job."}, *BASE["tools"]]
    server, errors = load_server_file(write(tmp_path, server_data(tools=tools)))
    assert errors == [] and server is not None
    assert [t.category for t in server.tools] == [Category.DESTRUCTIVE, Category.READ, Category.EXECUTE]
    assert [t.category_curated for t in server.tools] == [False, True, True]
    assert all(t.evidence for t in server.tools)
