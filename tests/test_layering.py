"""The package's import graph: core never imports contrib, and no module-level cycle.

A cycle among modules works until someone imports them in another order; then one
sees the other half-initialised. Imports under ``if TYPE_CHECKING:`` and inside
functions do not run at import time, so they do not count as edges of the graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import middleware_stack

ROOT = Path(middleware_stack.__file__).parent
PACKAGE = "middleware_stack"


def _module_name(path: Path) -> str:
    parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in ROOT.rglob("*.py")}


def _imported(node: ast.AST, package: str) -> list[str]:
    """The package's modules one import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    module = (base + "." + node.module if node.module else base) if node.level else node.module
    module = module or ""
    # "from pkg import sub" imports the submodule; "from mod import name" the module.
    return [
        f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module
        for alias in node.names
    ]


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run at import time: the body, and what if/try blocks hold,
    without ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.stmt] = []
    for statement in body:
        if isinstance(statement, ast.If):
            if "TYPE_CHECKING" in ast.unparse(statement.test):
                found.extend(_top_level(statement.orelse))
                continue
            found.extend(_top_level(statement.body + statement.orelse))
        elif isinstance(statement, ast.Try):
            blocks = statement.body + statement.orelse + statement.finalbody
            for handler in statement.handlers:
                blocks += handler.body
            found.extend(_top_level(blocks))
        else:
            found.append(statement)
    return found


def import_graph(everywhere: bool = False) -> dict[str, set[str]]:
    """Each module's edges to the package's modules: at import time, or (with
    ``everywhere``) from any import statement, functions included."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        nodes = list(ast.walk(tree)) if everywhere else _top_level(tree.body)
        graph[name] = {
            module
            for node in nodes
            for module in _imported(node, package)
            if module in MODULES and module != name
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_another_that_imports_it_back_at_import_time() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_reports_a_cycle_it_is_given() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_imports_under_type_checking_are_no_edges_and_other_guarded_imports_are() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import a\n"
        "try:\n    import b\nexcept ImportError:\n    import c\n"
        "def f():\n    import d\n"
    )
    names = [alias.name for node in _top_level(tree.body) for alias in getattr(node, "names", [])]
    assert names == ["TYPE_CHECKING", "b", "c"]


def test_core_never_imports_contrib_even_inside_functions() -> None:
    contrib = f"{PACKAGE}.contrib"
    leaks = {
        module: sorted(other for other in edges if other.startswith(contrib))
        for module, edges in import_graph(everywhere=True).items()
        if not module.startswith(contrib)
    }
    assert {module: edges for module, edges in leaks.items() if edges} == {}


def test_the_graph_sees_relative_and_submodule_imports() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.guards.checkpoint" in graph[f"{PACKAGE}.guards"]
    assert f"{PACKAGE}.threads" not in graph[f"{PACKAGE}.lease"]  # only under TYPE_CHECKING
