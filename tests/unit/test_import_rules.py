"""The dependency rules of docs/ARCHITECTURE.md, checked on the source: imports point one way.

Every `import` and `from ... import` in `intercept/` and `generator/` counts, including the ones
inside functions (a lazy import is still a dependency) and under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("intercept", "generator")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            # `from pkg import mod` names a module when pkg/mod.py exists
            yield from (f"{target}.{alias.name}" for alias in node.names)


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Each project module to the project modules it imports."""
    sources = {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph: dict[str, frozenset[str]] = {}
    for name, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = _imported(tree, name, path.name == "__init__.py")
        graph[name] = frozenset(t for t in targets if t in sources and t != name)
    return graph


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _violations(source: str, forbidden: str, allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if _under(module, source) and not any(_under(module, a) for a in allowed)
        for target in targets
        if _under(target, forbidden)
    )


def test_the_graph_sees_the_project() -> None:
    graph = import_graph()
    assert len(graph) > 40
    assert "intercept.engine" in graph["intercept.proxy"]


def test_util_depends_on_nothing_else_of_the_project() -> None:
    outside = [v for v in _violations("intercept.util", "intercept") if " imports intercept.util" not in v]
    assert outside == []
    assert _violations("intercept.util", "generator") == []


def test_only_the_cli_layer_of_intercept_imports_generator() -> None:
    assert _violations("intercept", "generator", allowed=("intercept.commands", "intercept.cli")) == []


@pytest.mark.parametrize(
    "core",
    [
        "intercept.policy",
        "intercept.engine",
        "intercept.proxy",
        "intercept.relay",
        "intercept.approvals",
        "intercept.shadow",
        "intercept.runtime",
    ],
)
def test_transports_never_import_policy_engine_or_router(core: str) -> None:
    assert _violations("intercept.transport", core) == []


def test_the_wire_format_depends_only_on_util() -> None:
    outside = [
        v
        for v in _violations("intercept.protocol", "intercept")
        if " imports intercept.util" not in v and " imports intercept.protocol" not in v
    ]
    assert outside == []


def test_only_the_cli_layer_and_runtime_assemble_the_proxy() -> None:
    assert (
        _violations("intercept", "intercept.runtime", allowed=("intercept.runtime", "intercept.commands"))
        == []
    )


def test_generator_uses_only_the_neutral_parts_of_intercept() -> None:
    allowed = ("intercept.util", "intercept.policy", "intercept.scan", "intercept.sandbox")
    found = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if _under(module, "generator")
        for target in targets
        if _under(target, "intercept") and not any(_under(target, a) for a in allowed)
    )
    assert found == []


def test_no_import_cycles() -> None:
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            # a package's __init__ importing its own modules is not a cycle between jobs
            if _under(target, node):
                continue
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []
