"""No table of verdict classes spelled as strings outside model/vocabulary.py (issue #16: the
classes were written out four times, then a fifth in report/timeline.py's colours).

tests/test_vocabulary.py catches a bare class compared and a table of techniques; a table of
classes (a dict, set, tuple or list literal naming several classes) is the same copy. Probe
steps share five words with the classes (dns, tcp, tls, http, quic), so a table counts as one
of classes only when it also names a class no step is called (ok, throttled, down, outage,
unknown, vpn).
"""

from __future__ import annotations

import ast

from netvigil.model.vocabulary import VerdictClass
from tests.test_vocabulary import _sources

CLASSES = {c.value for c in VerdictClass}
NOT_STEPS = CLASSES - {"dns", "tcp", "tls", "http", "quic"}


def class_tables(tree: ast.AST, rel: str) -> list[str]:
    """`file:line: [...]` for each literal whose plain-string items (keys) name three classes or
    more, one of them not a probe step."""
    found = []
    for node in ast.walk(tree):
        items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, (ast.Set, ast.Tuple, ast.List)) else None
        if not items or rel.endswith("model/vocabulary.py"):
            continue
        words = [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str) and i.value in CLASSES]
        if len(words) >= 3 and set(words) & NOT_STEPS:
            found.append(f"{rel}:{node.lineno}: {words} (use VerdictClass members)")
    return found


def test_the_check_tells_classes_from_steps():
    tree = ast.parse('C = {"ok": 1, "dns": 2, "tls": 3}\nS = ("dns", "tcp", "tls", "http")\n'
                     'M = {V.OK: 1, V.DNS: 2, "partial": 3}\n')
    assert class_tables(tree, "x.py") == ["x.py:1: ['ok', 'dns', 'tls'] (use VerdictClass members)"]


def test_no_table_of_classes_spelled_as_strings():
    found = [hit for rel, tree in _sources() for hit in class_tables(tree, rel)]
    assert not found, "tables of verdict classes as bare strings:\n" + "\n".join(found)
