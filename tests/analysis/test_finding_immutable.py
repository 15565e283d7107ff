"""Findings are immutable (issue #16: the live path's `_resolve` edited findings in place, so a
round judged again repeated `tls.valid_cert_elsewhere_same_address` up to three times).

A Finding is a frozen dataclass: assigning a field raises, and a changed finding is
`dataclasses.replace(f, ...)`. Its list fields (rule ids, secondary techniques, sample rates)
could still be edited in place, so the analysis' sources are checked for that too.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import netvigil.analysis
from netvigil.analysis.verdicts.finding import Finding

ANALYSIS = Path(netvigil.analysis.__file__).parent
LIST_FIELDS = {f.name for f in dataclasses.fields(Finding) if f.default_factory is list}
EDITS = {"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "__setitem__", "__delitem__"}


def in_place_edits(tree: ast.AST, rel: str) -> list[str]:
    """`file:line: x.rule_ids.append(...)`-like edits of a list field of LIST_FIELDS."""
    found = []
    for n in ast.walk(tree):
        target = None
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in EDITS:
            target = n.func.value
        elif isinstance(n, ast.AugAssign):
            target = n.target
        elif isinstance(n, (ast.Assign, ast.Delete)):
            for t in getattr(n, "targets", []):
                if isinstance(t, ast.Subscript):
                    target = t.value
        if isinstance(target, ast.Attribute) and target.attr in LIST_FIELDS:
            found.append(f"{rel}:{n.lineno}: {ast.unparse(n)[:80]}")
    return found


def test_a_finding_cannot_be_edited():
    f = Finding("tls", "tls.reset_after_hello", 0.8, rule_ids=["tls.failure:connection_reset"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.confidence = 0.1  # type: ignore[misc]
    g = dataclasses.replace(f, rule_ids=[*f.rule_ids, "context.controls_ok"])
    assert f.rule_ids == ["tls.failure:connection_reset"] and g.rule_ids[-1] == "context.controls_ok"


def test_the_check_sees_an_in_place_edit():
    tree = ast.parse("f.rule_ids.append('x')\nf.secondary += ['y']\nf.sample_rates[0] = 1\nrules.append(1)\n")
    assert sorted(h.split(": ", 1)[0] for h in in_place_edits(tree, "x.py")) == ["x.py:1", "x.py:2", "x.py:3"]


def test_no_list_of_a_finding_is_edited_in_place():
    assert {"rule_ids", "secondary", "sample_rates"} <= LIST_FIELDS
    found = [hit for p in sorted(ANALYSIS.rglob("*.py"))
             for hit in in_place_edits(ast.parse(p.read_text(), str(p)), p.relative_to(ANALYSIS).as_posix())]
    assert not found, "findings' lists edited in place (make a new one with dataclasses.replace):\n" + "\n".join(found)
