"""No import cycles in tui_trainer (DESIGN §2), read from the source with ``ast``.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: a lazy
import hides a cycle, it does not remove it. A package ``__init__`` re-exporting its own
children is not a cycle (importing the child runs the parent first anyway).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tui_trainer"
UI = "tui_trainer.ui"


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under ``package`` (packages named by their __init__)."""
    out = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name an import statement anywhere in the module may load."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (an __init__'s edges to and from its own subtree left out)."""
    mods = modules(package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        for target in imported_names(module, path):
            if target not in mods or target == module:
                continue
            parent, child = sorted((module, target), key=len)
            if mods[parent].name == "__init__.py" and child.startswith(parent + "."):
                continue
            graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        # Tarjan; the graph has about a hundred nodes, so recursion depth is no concern.
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(min(c), graph, c) for c in components]


def _cycle_through(start: str, graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """The shortest path start -> ... -> start inside the component (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in came_from:
                    came_from[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")


def _named(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(c) for c in found)


def _is_ui(cycle: list[str]) -> bool:
    return all(m == UI or m.startswith(UI + ".") for m in cycle)


def test_core_has_no_import_cycle():
    found = [c for c in cycles(import_graph(PACKAGE)) if not _is_ui(c)]
    assert not found, f"import cycles in tui_trainer:\n{_named(found)}"


def test_ui_has_no_import_cycle():
    # Screens post messages up instead of calling the app, so no screen imports ui/app.
    found = [c for c in cycles(import_graph(PACKAGE)) if _is_ui(c)]
    assert not found, f"import cycles in tui_trainer.ui:\n{_named(found)}"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_walk_sees_lazy_type_checking_and_relative_imports(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import A\n",
            "pkg/a.py": "A = 1\ndef f():\n    from pkg.sub import b\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..c import C\n",
            "pkg/c.py": "import pkg.a\nC = 1\n",
            "pkg/d.py": "from . import c\n",
        },
    )
    found = cycles(import_graph(pkg))
    assert found == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    assert "pkg.c" in import_graph(pkg)["pkg.d"]


def test_a_package_reexporting_its_children_is_not_a_cycle(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.api import train\n",
            "pkg/api.py": "from pkg.sub import helper\ndef train(): ...\n",
            "pkg/sub/__init__.py": "from .helper import h\n",
            "pkg/sub/helper.py": "import pkg.sub\nh = 1\n",
        },
    )
    assert cycles(import_graph(pkg)) == []


LOWER = ("tui_trainer.config", "tui_trainer.data", "tui_trainer.tasks")
HIGHER = ("tui_trainer.engine", "tui_trainer.runs", "tui_trainer.ui", "tui_trainer.cli", "tui_trainer.api")
KNOWN_LAYER_BREAKS: set[tuple[str, str]] = set()
"""Lower-to-higher imports allowed by name while they wait for their owners (none left)."""


def _layer_breaks() -> set[tuple[str, str]]:
    def inside(module: str, layers: tuple[str, ...]) -> bool:
        return any(module == layer or module.startswith(layer + ".") for layer in layers)

    graph = import_graph(PACKAGE)
    return {(m, t) for m, targets in graph.items() if inside(m, LOWER) for t in targets if inside(t, HIGHER)}


def test_lower_layers_never_import_engine_runs_or_ui():
    new = _layer_breaks() - KNOWN_LAYER_BREAKS
    assert not new, "config/data/tasks import a higher layer:\n" + "\n".join(f"{m} -> {t}" for m, t in sorted(new))


def test_no_known_layer_break_is_left():
    assert not _layer_breaks() & KNOWN_LAYER_BREAKS
