"""Every sizeable class in src/ says what it is for (issue #16: "docstrings on the main
classes"). A class of MIN_LINES lines or more without a docstring fails; a small record or
protocol class may go without one. One pass of `ast`, no import of the code it checks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import netvigil

ROOT = Path(netvigil.__file__).parent
MIN_LINES = 25


def undocumented(tree: ast.AST, rel: str) -> list[str]:
    return [f"{rel}:{n.lineno}: {n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(tree)
            if isinstance(n, ast.ClassDef) and n.end_lineno - n.lineno + 1 >= MIN_LINES and not ast.get_docstring(n)]


def test_the_check_sees_a_large_class_without_a_docstring():
    body = "".join(f"    x{i} = {i}\n" for i in range(MIN_LINES))
    tree = ast.parse(f"class Big:\n{body}\nclass Told:\n    '''Why.'''\n{body}\nclass Small:\n    x = 1\n")
    assert undocumented(tree, "x.py") == [f"x.py:1: Big ({MIN_LINES + 1} lines)"]


def test_every_sizeable_class_has_a_docstring():
    found = [hit for p in sorted(ROOT.rglob("*.py"))
             for hit in undocumented(ast.parse(p.read_text(), str(p)), p.relative_to(ROOT).as_posix())]
    assert not found, "classes without a docstring (say what each is for, in a line or two):\n" + "\n".join(found)
