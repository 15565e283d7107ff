"""No dead code in src/: every function, method and class is used somewhere, and every import
of a module is read in it.

A definition counts as used when its name is referenced (a name, an attribute, an import or a
string that is just its name) anywhere in src/, tests/, benchmarks/ or scripts/. A decorated definition is
registered by its decorator (a route, a CLI command, a fixture) and counts as used; so do
callbacks a library calls by name (CALLBACKS). An import a module keeps for others to import
from it says so with `# noqa: F401`. One pass of `ast`, no import of the code it checks: the
same rule as vulture's and pyflakes' first findings, without adding either to the environment.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import Counter
from pathlib import Path

import netvigil

ROOT = Path(netvigil.__file__).parent
REPO = Path(__file__).resolve().parents[1]
PLACES = ("src", "tests", "benchmarks", "scripts")
# methods a library or the runtime calls by name, never our code
CALLBACKS = {
    "readinto": "io's raw-stream protocol (a file object a reader wraps)",
    "makefile": "socket's protocol (http.client calls it)",
    "error_received": "asyncio.DatagramProtocol",
    "quic_event_received": "aioquic's QuicConnectionProtocol",
}
_WORD = re.compile(r"[A-Za-z_]\w*")


@functools.cache
def _parsed(place: str) -> tuple[tuple[Path, ast.AST], ...]:
    base = REPO / place
    if not base.is_dir():
        return ()
    return tuple((p, ast.parse(p.read_text(), str(p))) for p in sorted(base.rglob("*.py")) if ".venv" not in p.parts)


@functools.cache
def references() -> Counter:
    """How often each name is referenced in the places above (definitions themselves excluded)."""
    refs: Counter = Counter()
    for place in PLACES:
        for _, tree in _parsed(place):
            for n in ast.walk(tree):
                if isinstance(n, ast.Name):
                    refs[n.id] += 1
                elif isinstance(n, ast.Attribute):
                    refs[n.attr] += 1
                elif isinstance(n, ast.alias):
                    refs[n.name.rsplit(".", 1)[-1]] += 1
                elif isinstance(n, ast.Constant) and isinstance(n.value, str) and _WORD.fullmatch(n.value):
                    refs[n.value] += 1  # looked up by name: getattr(x, "name"), monkeypatch.setattr
    return refs


def unused_definitions(tree: ast.AST, refs: Counter) -> list[tuple[int, str]]:
    """(line, name) of each plain definition in TREE whose name nothing references."""
    found = []
    for n in ast.walk(tree):
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        plain = all(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod", "property")
                    for d in n.decorator_list)
        if plain and not n.name.startswith("__") and n.name not in CALLBACKS and refs[n.name] == 0:
            found.append((n.lineno, n.name))
    return found


def unused_imports(tree: ast.Module, lines: list[str]) -> list[tuple[int, str]]:
    """(line, name) of each module-level import TREE never reads (`# noqa: F401` keeps one)."""
    used: Counter = Counter()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            used[n.id] += 1
        elif isinstance(n, ast.Attribute):
            root = n
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name):
                used[root.id] += 1
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 2000:
            used.update(_WORD.findall(n.value))  # a quoted annotation, __all__
    found = []
    for stmt in tree.body:
        if not isinstance(stmt, (ast.Import, ast.ImportFrom)) or getattr(stmt, "module", None) == "__future__":
            continue
        if any("noqa" in line for line in lines[stmt.lineno - 1:stmt.end_lineno]):
            continue
        for a in stmt.names:
            name = a.asname or a.name.split(".")[0]
            if name != "*" and used[name] == 0:
                found.append((stmt.lineno, name))
    return found


def test_the_checks_see_what_they_look_for():
    src = ("import os\nimport re  # noqa: F401\nfrom x import a, b\n"
           "def used():\n    return a\n@app.get('/')\ndef route():\n    pass\n"
           "def lonely():\n    pass\nclass P:\n    def quic_event_received(self, e):\n        pass\n")
    tree = ast.parse(src)
    assert unused_imports(tree, src.splitlines()) == [(1, "os"), (3, "b")]
    assert unused_definitions(tree, Counter({"used": 1, "P": 1})) == [(9, "lonely")]


def test_every_definition_in_src_is_used():
    refs = references()
    assert refs["measurement_uid"] > 0, "the sources were not found"
    found = [f"{path.relative_to(REPO)}:{line}: {name}"
             for path, tree in _parsed("src") for line, name in unused_definitions(tree, refs)]
    assert not found, "defined but never used (delete it, or say in CALLBACKS who calls it):\n" + "\n".join(found)


def test_every_import_in_src_is_read():
    found = []
    for path, tree in _parsed("src"):
        if path.name == "__init__.py":
            continue  # a package's __init__ imports to re-export
        found += [f"{path.relative_to(REPO)}:{line}: {name}"
                  for line, name in unused_imports(tree, path.read_text().splitlines())]
    assert not found, "imported but never read (delete it, or mark a re-export `# noqa: F401`):\n" + "\n".join(found)


def test_every_callback_name_is_still_defined():
    """A CALLBACKS entry no class defines any more is stale."""
    defined = {n.name for _, tree in _parsed("src") for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert set(CALLBACKS) <= defined, set(CALLBACKS) - defined
