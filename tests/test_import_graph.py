"""The integration's modules import each other without cycles.

The graph holds every import between modules of ``custom_components/sip_endpoint``:
module-level imports, imports inside functions and imports under
``if TYPE_CHECKING:`` alike. A function-local import hides a cycle from Python, and
a type-only one hides it from the import system, but neither hides it from the
reader: two modules that name each other are one module in two files. Where a lower
module needs to talk back to a higher one, it declares what it needs (a
``typing.Protocol`` or a callback) and the higher one satisfies it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "custom_components.sip_endpoint"
ROOT = Path(__file__).resolve().parents[1] / "custom_components" / "sip_endpoint"


def _module_name(path: Path) -> str:
    """Return the dotted module name of a file under ROOT."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Return every import statement of a module, wherever it stands."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]


def _resolve(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> set[str]:
    """Return the modules of the package that one import statement loads."""
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")
            if not is_package:
                base.pop()
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base)
            source = f"{prefix}.{node.module}" if node.module else prefix
        else:
            source = node.module or ""
        # "from package import name" loads package.name when that is a module.
        names = [source, *(f"{source}.{alias.name}" for alias in node.names)]
    for name in names:
        if name in known:
            targets.add(name)
        elif name.startswith(f"{PACKAGE}."):
            # "import a.b.c" or "from a.b import attr": the deepest known module
            parent = name
            while parent and parent not in known:
                parent = parent.rpartition(".")[0]
            if parent:
                targets.add(parent)
    return targets


def import_graph() -> dict[str, set[str]]:
    """Return module -> modules of the package it imports."""
    files = {
        _module_name(path): path
        for path in ROOT.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    known = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _resolve(module, is_package, node, known)
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return one cycle per strongly connected component bigger than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(graph, set(component)) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """Return one concrete cycle (first module repeated at the end) in a component."""
    start = min(component)
    # breadth-first search from start back to start inside the component
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if target not in parents:
                    parents[target] = node
                    following.append(target)
        frontier = following
    return sorted(component)


def _component_of(graph: dict[str, set[str]], module: str) -> list[str]:
    """Return the modules that both reach and are reached from module."""

    def reach(start: str, edges: dict[str, set[str]]) -> set[str]:
        seen = {start}
        todo = [start]
        while todo:
            for target in edges.get(todo.pop(), ()):
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    reverse: dict[str, set[str]] = {}
    for source, targets in graph.items():
        for target in targets:
            reverse.setdefault(target, set()).add(source)
    return sorted(reach(module, graph) & reach(module, reverse))


def _short(module: str) -> str:
    """Return a module name without the package prefix."""
    return module.removeprefix(f"{PACKAGE}.")


def test_the_graph_sees_relative_and_function_local_imports() -> None:
    """The graph holds edges the package is known to have (a sanity check)."""
    graph = import_graph()
    assert f"{PACKAGE}.protocol" in graph
    assert f"{PACKAGE}.const" in graph[f"{PACKAGE}.config_flow"]
    assert all(target in graph for targets in graph.values() for target in targets)


def test_type_only_and_function_local_imports_are_edges() -> None:
    """An import under ``if TYPE_CHECKING:`` or inside a function is an edge too."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .b import B\n"
        "else:\n"
        "    from . import c\n"
        "def f() -> None:\n"
        "    from .d import D\n"
    )
    known = {f"{PACKAGE}.{name}" for name in ("a", "b", "c", "d")}
    edges: set[str] = set()
    for node in _imports(tree):
        edges |= _resolve(f"{PACKAGE}.a", False, node, known)
    assert edges == {f"{PACKAGE}.b", f"{PACKAGE}.c", f"{PACKAGE}.d"}


def test_a_cycle_is_found() -> None:
    """find_cycles reports a cycle of three and ignores a chain."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_call_session_is_a_leaf_of_calls() -> None:
    """calls/session.py reaches no router or role handler (they all build on it)."""
    graph = import_graph()
    reached: set[str] = set()
    todo = [f"{PACKAGE}.calls.session"]
    while todo:
        for target in graph[todo.pop()]:
            if target not in reached:
                reached.add(target)
                todo.append(target)
    calls = {_short(m) for m in reached if m.startswith(f"{PACKAGE}.calls.")}
    assert calls <= {"calls.sounds"}, calls


def test_home_assistant_side_imports_the_engine_package_only() -> None:
    """Outside engine/, the engine is used through engine/__init__.py alone."""
    engine = f"{PACKAGE}.engine"
    direct = sorted(
        f"{_short(module)} -> {_short(target)}"
        for module, targets in import_graph().items()
        if not module.startswith((f"{engine}.", f"{PACKAGE}.worker"))
        and module != engine
        for target in targets
        if target.startswith(f"{engine}.")
    )
    assert not direct, direct


def test_no_import_cycles() -> None:
    """No module of the integration reaches itself through its imports."""
    graph = import_graph()
    cycles = find_cycles(graph)
    printed = "\n".join(
        " -> ".join(_short(m) for m in cycle)
        + "\n    (among: "
        + ", ".join(_short(m) for m in _component_of(graph, cycle[0]))
        + ")"
        for cycle in cycles
    )
    assert not cycles, f"import cycles:\n{printed}"
