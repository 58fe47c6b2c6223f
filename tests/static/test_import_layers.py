"""The local runtime's dependency direction, checked on the import graph of sagepipe/ (ast, no import runs).

cli -> replay -> runner -> provisioner/services -> codebuild, sagemaker -> stepfunctions, lambda_, eventbridge, s3,
dynamodb -> core. A module may import its own package, lower layers and the shared modules (sagepipe.template,
sagepipe.cloudformation, sagepipe.error_names, sagepipe.local.process, git, images, graph, sample_data...); never
a higher layer, nor a sibling package of its own layer (the service packages do not know each other: the
composition root wires them). Shared modules import only shared modules and the core. And the graph has no cycle.
Every import counts, those inside functions and under TYPE_CHECKING too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from sagepipe.template import PROJECT_ROOT

LAYERS: tuple[tuple[str, ...], ...] = (
    ("sagepipe.cli",),
    ("sagepipe.local.replay",),
    ("sagepipe.local.runner",),
    ("sagepipe.local.provisioner", "sagepipe.local.services"),
    ("sagepipe.local.codebuild", "sagepipe.local.sagemaker"),
    (
        "sagepipe.local.stepfunctions",
        "sagepipe.local.lambda_",
        "sagepipe.local.eventbridge",
        "sagepipe.local.s3",
        "sagepipe.local.dynamodb",
        "sagepipe.local.codecommit",
    ),
    ("sagepipe.local.core",),
)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """The sagepipe modules a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {item for item in found if item == "sagepipe" or item.startswith("sagepipe.")}


def import_graph(root: Path) -> dict[str, set[str]]:
    files = {module_name(path, root): path for path in (root / "sagepipe").rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        # `from package import module` names a module; `from module import attribute` names the module.
        graph[name] = {target if target in files else target.rpartition(".")[0] for target in imports_of(path, name)}
        graph[name] = {target for target in graph[name] if target in files and target != name}
    return graph


def layer_of(module: str, layers: tuple[tuple[str, ...], ...]) -> tuple[int, str] | None:
    for index, members in enumerate(layers):
        for member in members:
            if module == member or module.startswith(member + "."):
                return index, member
    return None


def layer_violations(graph: Mapping[str, Iterable[str]], layers: tuple[tuple[str, ...], ...]) -> list[str]:
    core = len(layers) - 1
    problems = []
    for module, targets in graph.items():
        mine = layer_of(module, layers)
        for target in targets:
            theirs = layer_of(target, layers)
            if theirs is None:
                continue  # a shared module: anyone may use it
            if mine is None:
                if theirs[0] != core:
                    problems.append(f"shared module {module} imports {target} ({theirs[1]})")
            elif mine[1] != theirs[1] and theirs[0] <= mine[0]:
                kind = "a sibling" if theirs[0] == mine[0] else "a higher layer"
                problems.append(f"{module} ({mine[1]}) imports {target}, {kind} ({theirs[1]})")
    return sorted(problems)


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


GRAPH = import_graph(PROJECT_ROOT)


def test_the_graph_sees_the_local_runtime() -> None:
    """The checks below are only as good as the graph: it holds the packages and their known edges."""
    assert "sagepipe.local.provisioner" in GRAPH
    assert "sagepipe.local.codebuild.provisioning" in GRAPH["sagepipe.local.provisioner"]
    assert "sagepipe.local.core.context" in GRAPH["sagepipe.local.codebuild.adapter"]


def test_each_layer_imports_only_lower_layers_and_shared_modules() -> None:
    assert layer_violations(GRAPH, LAYERS) == []


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(GRAPH) == []


@pytest.mark.parametrize(
    ("extra_edge", "problem"),
    [
        (("sagepipe.local.core.emulator", "sagepipe.local.services"), "imports sagepipe.local.services, a higher"),
        (("sagepipe.local.stepfunctions.service_tasks", "sagepipe.local.codebuild.adapter"), "a higher layer"),
        (("sagepipe.local.s3.events", "sagepipe.local.eventbridge.targets"), "a sibling"),
        (("sagepipe.local.process", "sagepipe.local.runner"), "shared module sagepipe.local.process imports"),
    ],
)
def test_the_checks_fail_when_someone_adds_an_upward_import(extra_edge: tuple[str, str], problem: str) -> None:
    """Given the real graph plus one import that breaks the direction, then the layer check names it."""
    graph = {module: set(targets) for module, targets in GRAPH.items()}
    graph[extra_edge[0]].add(extra_edge[1])
    assert any(problem in line for line in layer_violations(graph, LAYERS))


def test_the_checks_fail_when_someone_adds_a_cycle() -> None:
    """Given the real graph plus the cycle the old layout had (emulator -> services -> lambda_ runtime ->
    emulator), then the cycle check finds it."""
    graph = {module: set(targets) for module, targets in GRAPH.items()}
    graph["sagepipe.local.core.emulator"].add("sagepipe.local.services")
    found = cycles(graph)
    assert any({"sagepipe.local.core.emulator", "sagepipe.local.services"} <= set(cycle) for cycle in found)
