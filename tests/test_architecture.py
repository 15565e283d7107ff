"""The package map holds: no two top-level packages of netvigil import each other.

Every import counts, lazy ones inside functions included, so a cycle cannot hide behind a
deferred import. docs/architecture.md's table says which packages each one imports; this test
keeps that table equal to the code, so the map a newcomer reads is the code's.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

import netvigil

ROOT = Path(netvigil.__file__).parent
DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
FLOOR = {"model"}  # with errors.py and _io.py (modules, not packages): every package may use them


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


@functools.cache
def package_graph() -> dict[str, dict[str, set[str]]]:
    """{package: {imported package: files that import it}} over src/netvigil; every package
    with a Python file is a key, importing others or not. Parsed once for all the tests here
    (plain dicts: a test that reads a missing key cannot add it)."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if len(rel.parts) == 1:
            continue  # netvigil/__init__.py and __main__.py sit above the packages
        package = rel.parts[0]
        graph[package]  # noqa: B018  (a package that imports no other package is still in the map)
        module = list(rel.with_suffix("").parts)
        for name in _imported_modules(ast.parse(path.read_text(), str(path)), module):
            target = name.split(".")[1]
            if target != package and (ROOT / target).is_dir():
                graph[package][target].add(str(rel))
    return {p: dict(deps) for p, deps in graph.items()}


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
    """model, errors.py and _io.py are the floor: every package may use them, they use no
    package (errors.py and _io.py not even model)."""
    graph = package_graph()
    assert set(graph["model"]) == set(), dict(graph["model"])
    for name in ("errors.py", "_io.py"):
        imported = _imported_modules(ast.parse((ROOT / name).read_text()), [name[:-3]])
        assert imported <= {"netvigil.errors", "netvigil._io"}, (name, imported)


def test_every_package_is_parsed():
    """No package is left out of the graph: every folder of src/netvigil that holds Python
    (a namespace package such as probe/ included) is in it, and so are its sub-packages' files."""
    folders = {d.name for d in ROOT.iterdir() if d.is_dir() and any(d.rglob("*.py"))}
    assert folders and set(package_graph()) == folders
    assert "probe" in folders and not (ROOT / "probe" / "__init__.py").exists()  # the namespace case
    deep = _imported_modules(ast.parse((ROOT / "analysis" / "verdicts" / "engine.py").read_text()),
                             ["analysis", "verdicts", "engine"])
    assert "netvigil.targets.catalogue" in deep  # a lazy import two folders down is seen


def documented_imports() -> dict[str, set[str]]:
    """{package: packages it imports, besides the floor} from docs/architecture.md's table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\|\s*`(\w+)/`\s*\|[^|]*\|([^|]*)\|\s*$", line)
        if m:
            rows[m.group(1)] = set(re.findall(r"`(\w+)/`", m.group(2)))
    return rows


def test_the_documented_map_is_the_code():
    """Each row of docs/architecture.md's package table names exactly the packages that
    package imports; a new import, a dropped one or a new package fails until the map is
    redrawn."""
    documented = documented_imports()
    assert len(documented) >= 10, "the package table in docs/architecture.md was not found"
    graph = package_graph()
    actual = {p: set(deps) - FLOOR for p, deps in graph.items() if p not in FLOOR}
    wrong = {p: {"doc": sorted(documented.get(p, set())), "code": sorted(actual.get(p, set()))}
             for p in sorted(set(documented) | set(actual)) if documented.get(p) != actual.get(p)}
    assert not wrong, f"docs/architecture.md's package table differs from the imports: {wrong}"


# (importer, imported): the analysis and the read side take nothing from the intake; the
# probe and the agent talk to the collector over HTTP only (their shared types are model/'s)
FORBIDDEN = {
    ("analysis", "collector"): "the provenance record is model/provenance.py's",
    ("report", "collector"): "the request helpers (read_body, require_admin) are web/request.py's",
    ("probe", "collector"): "the submitting client lives with the probe",
    ("agent", "collector"): "the check-in protocol is model/checkin.py's",
}


def test_no_back_import_into_the_collector():
    graph = package_graph()
    found = {f"{a} -> {b} ({', '.join(sorted(graph[a][b]))}): {why}"
             for (a, b), why in FORBIDDEN.items() if b in graph.get(a, {})}
    assert not found, "imports the architecture forbids:\n" + "\n".join(sorted(found))
    assert {"analysis", "report", "probe", "agent", "collector"} <= set(graph)  # the names are real packages
