"""Every fuzzer is derandomised with a fixed budget (issue #16: tests/signals/test_fuzz.py drew
new examples on every run, and one of them sent mrtparse into a loop of 20 GB).

The profile tests/conftest.py loads derandomises every hypothesis test and keeps no example
database, so each run draws the same examples; each `@given` test says its budget
(`max_examples`) in its `@settings`, directly or through a module-level settings object, so
its cost is written beside it. One pass of `ast` over tests/ for the budgets.
"""

from __future__ import annotations

import ast
from pathlib import Path

from hypothesis import settings

TESTS = Path(__file__).resolve().parent


def _budgeted_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to `settings(..., max_examples=N, ...)`."""
    out = set()
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)
                and ast.unparse(stmt.value.func).endswith("settings")
                and any(k.arg == "max_examples" for k in stmt.value.keywords)):
            out.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
    return out


def unbudgeted(tree: ast.Module, rel: str) -> list[str]:
    named = _budgeted_names(tree)
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        decorators = fn.decorator_list
        if not any(isinstance(d, ast.Call) and ast.unparse(d.func).endswith("given") for d in decorators):
            continue
        ok = any((isinstance(d, ast.Call) and ast.unparse(d.func).endswith("settings")
                  and any(k.arg == "max_examples" for k in d.keywords))
                 or (isinstance(d, ast.Name) and d.id in named) for d in decorators)
        if not ok:
            found.append(f"{rel}:{fn.lineno}: {fn.name}")
    return found


def test_the_check_sees_a_fuzzer_without_a_budget():
    tree = ast.parse("B = settings(max_examples=5)\n"
                     "@settings(max_examples=3)\n@given(st.text())\ndef test_a(x):\n    pass\n"
                     "@B\n@given(st.text())\ndef test_b(x):\n    pass\n"
                     "@settings(deadline=None)\n@given(st.text())\ndef test_c(x):\n    pass\n"
                     "@given(st.text())\ndef test_d(x):\n    pass\n")
    assert unbudgeted(tree, "x.py") == ["x.py:12: test_c", "x.py:15: test_d"]


def test_the_loaded_profile_is_derandomised_without_a_database():
    assert settings.default.derandomize is True and settings.default.database is None
    assert settings(max_examples=7).derandomize is True  # a test's own settings inherit it


def test_every_fuzzer_states_its_budget():
    found = [hit for p in sorted(TESTS.rglob("*.py")) if "vendor" not in p.parts
             for hit in unbudgeted(ast.parse(p.read_text(), str(p)), str(p.relative_to(TESTS)))]
    assert not found, "@given tests without max_examples in their @settings:\n" + "\n".join(found)
