"""The package map holds: no two top-level packages of netvigil import each other.

Every import counts, lazy ones inside functions included, so a cycle cannot hide behind a
deferred import. docs/architecture.md draws the map this test keeps true.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import netvigil

ROOT = Path(netvigil.__file__).parent


def _imported_modules(tree: ast.AST, module: list[str]) -> set[str]:
    """Absolute dotted names of every netvigil module the file imports."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("netvigil."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module[:-node.level]
                name = ".".join(["netvigil", *base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            if name == "netvigil":  # `from netvigil import evaluate`: the names are packages
                found.update(f"netvigil.{a.name}" for a in node.names)
            elif name.startswith("netvigil."):
                found.add(name)
    return found


def package_graph() -> dict[str, dict[str, set[str]]]:
    """{package: {imported package: files that import it}} over src/netvigil."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if len(rel.parts) == 1:
            continue  # netvigil/__init__.py and __main__.py sit above the packages
        package = rel.parts[0]
        module = list(rel.with_suffix("").parts)
        for name in _imported_modules(ast.parse(path.read_text(), str(path)), module):
            target = name.split(".")[1]
            if target != package and (ROOT / target).is_dir():
                graph[package][target].add(str(rel))
    return graph


def _cycle_through(graph, start: str) -> list[str] | None:
    """A shortest path start -> ... -> start, if any (breadth first)."""
    frontier, seen = [[start]], {start}
    while frontier:
        nxt = []
        for path in frontier:
            for dep in sorted(graph.get(path[-1], {})):
                if dep == start:
                    return [*path, start]
                if dep not in seen:
                    seen.add(dep)
                    nxt.append([*path, dep])
        frontier = nxt
    return None


def test_the_graph_sees_lazy_and_relative_imports():
    tree = ast.parse("def f():\n    from netvigil.model import uid\nfrom .. import store\nimport netvigil.report.api\n")
    got = _imported_modules(tree, ["analysis", "x"])
    assert got == {"netvigil.model", "netvigil.store", "netvigil.report.api"}


def test_no_import_cycle_between_top_level_packages():
    graph = package_graph()
    assert graph, "no package imports found: is the source tree where the test looks?"
    cycles = []
    for package in sorted(graph):
        cycle = _cycle_through(graph, package)
        if cycle:
            hops = [f"{a} -> {b} ({', '.join(sorted(graph[a][b]))})" for a, b in zip(cycle, cycle[1:])]
            cycles.append(" | ".join(hops))
    assert not cycles, "import cycles between packages:\n" + "\n".join(cycles)


def test_the_lower_layers_import_nothing_above_them():
    """model and errors are the floor: every package may use them, they use no package."""
    graph = package_graph()
    assert set(graph.get("model", {})) <= set(), dict(graph.get("model", {}))
