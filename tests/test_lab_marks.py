"""Every test that builds the lab is marked `lab` (issue #16: the live demo, 136 s as root,
was marked `slow` only, so a "not lab" run built namespaces).

A test builds the lab when it asks for `lab_ready` (tests/conftest.py: the lab's
prerequisites), directly or through a fixture that does. Such a test must carry the `lab`
mark, on itself or on its module (`pytestmark`), so that `-m "not lab"` leaves it out and
scripts/test.sh runs it alone. One pass of `ast` over tests/.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT_FIXTURE = "lab_ready"


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    return {a.arg for a in fn.args.args + fn.args.kwonlyargs}


def _is_fixture(fn: ast.AST) -> bool:
    return any("fixture" in ast.unparse(d) for d in getattr(fn, "decorator_list", []))


def _marks_lab(decorators: list[ast.expr]) -> bool:
    return any("mark.lab" in ast.unparse(d) for d in decorators)


def _module_marked(tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets):
            if "mark.lab" in ast.unparse(stmt.value):
                return True
    return False


def lab_fixtures(trees: dict[Path, ast.Module]) -> set[str]:
    """`lab_ready` and every fixture that asks for one of them, anywhere in tests/."""
    fixtures = {fn.name: _params(fn) for tree in trees.values() for fn in ast.walk(tree)
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_fixture(fn)}
    found = {ROOT_FIXTURE}
    while True:
        more = {name for name, params in fixtures.items() if params & found} - found
        if not more:
            return found
        found |= more


def unmarked_lab_tests(trees: dict[Path, ast.Module]) -> list[str]:
    needs = lab_fixtures(trees)
    out = []
    for path, tree in trees.items():
        if _module_marked(tree):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")
                    and _params(node) & needs and not _marks_lab(node.decorator_list)):
                out.append(f"{path}:{node.lineno}: {node.name} ({', '.join(sorted(_params(node) & needs))})")
    return out


def test_the_check_follows_fixtures_and_sees_the_mark():
    trees = {
        Path("conftest.py"): ast.parse("@pytest.fixture\ndef built(lab_ready):\n    pass\n"),
        Path("test_a.py"): ast.parse("def test_plain(tmp_path):\n    pass\n"
                                     "def test_builds(built):\n    pass\n"
                                     "@pytest.mark.lab\ndef test_marked(lab_ready):\n    pass\n"),
        Path("test_b.py"): ast.parse("pytestmark = [pytest.mark.lab]\ndef test_builds(built):\n    pass\n"),
    }
    assert lab_fixtures(trees) == {"lab_ready", "built"}
    assert unmarked_lab_tests(trees) == ["test_a.py:3: test_builds (built)"]


def test_every_lab_building_test_is_marked_lab():
    trees = {p.relative_to(TESTS): ast.parse(p.read_text(), str(p)) for p in sorted(TESTS.rglob("*.py"))
             if "vendor" not in p.parts}
    needs = lab_fixtures(trees)
    assert {"lab_ready", "technique_run"} <= needs, needs  # the fixtures were found
    found = unmarked_lab_tests(trees)
    assert not found, "tests that build the lab without the `lab` mark:\n" + "\n".join(found)
