"""The package's shape, kept: small modules, classes and stack functions; docker-py's raw `attrs` read only where
each engine makes its typed views; no import cycles (type-only imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "celery_cli"
SKIPPED = ("template", "flower_image")
MAX_MODULE_LINES = 350
MAX_CLASS_LINES = 150
MAX_STACK_FUNCTION_LINES = 50
DOCKER_CALLS = {"stack/containers/docker_api.py", "stack/swarm/docker_api.py"}


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not any(part in SKIPPED for part in path.parts):
            found[relative] = ast.parse(path.read_text(), filename=str(path))
    return found


def lines(node: ast.AST) -> int:
    return node.end_lineno - node.lineno + 1  # type: ignore[attr-defined, operator]


def test_no_module_over_350_lines() -> None:
    over = {name: len((PACKAGE / name).read_text().splitlines()) for name in modules()}
    assert {name: n for name, n in over.items() if n > MAX_MODULE_LINES} == {}


def test_no_class_over_150_lines() -> None:
    over = {
        f"{name}:{node.name}": lines(node)
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and lines(node) > MAX_CLASS_LINES
    }
    assert over == {}


def test_no_function_in_the_stack_over_50_lines() -> None:
    over = {
        f"{name}:{node.name}": lines(node)
        for name, tree in modules().items()
        if name.startswith("stack/")
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and lines(node) > MAX_STACK_FUNCTION_LINES
    }
    assert over == {}


def test_docker_attrs_are_read_only_in_the_engines_docker_calls_modules() -> None:
    readers = {
        name
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "attrs"
    }
    assert readers <= DOCKER_CALLS, (
        f"read docker-py's attrs outside {sorted(DOCKER_CALLS)}: {sorted(readers - DOCKER_CALLS)}"
    )


def _module_name(relative: str) -> str:
    parts = ["celery_cli", *relative.removesuffix(".py").split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(name: str, relative: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The package's modules this one imports, at any level (inside functions and TYPE_CHECKING too)."""
    package = name if relative.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in known and module != name}


def test_no_import_cycles() -> None:
    trees = modules()
    names = {_module_name(relative): relative for relative in trees}
    graph = {name: _imports(name, relative, trees[relative], set(names)) for name, relative in names.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], " | ".join(" -> ".join(cycle) for cycle in cycles)
