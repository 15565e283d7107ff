"""The verdict engine makes its findings with the vocabulary's members, not the words again
(issue #16: analysis/verdicts/ wrote `Finding("ok", ...)` and `tech = "outage.partial"` while
model/vocabulary.py defined the StrEnums).

tests/test_vocabulary.py catches a bare word compared anywhere in src/; this file catches the
words that make a verdict in src/netvigil/analysis/:

- a technique (a dotted `Technique` value, e.g. `throttled.targeted`) spelled anywhere, except
  as an item of a list literal (rule ids: `rule_ids=["fp:x", "http.diff"]` names the rule
  http.diff, not the technique) or a piece of an f-string;
- a class or technique (any `VerdictClass` / `Technique` value, `ok` and `outage` included)
  given as a Finding's class or technique (its first two arguments, or `klass=` /
  `technique=` of any call: Finding, Verdict, replace), assigned to a name or attribute that
  says so (`klass`, `tech...`), or returned by a function that says so (`Endpoint.technique`).
  A value is looked through `a if c else b`, `a or b` and a dict's values.

And every technique the rules can give (rules.toml's failure map, `<step>.<suffix>`, and
`<step>.failure` for a failure it does not name) is a member, so no verdict carries a
technique the vocabulary does not define. One pass of `ast`; the checked code is not imported.
"""

from __future__ import annotations

import ast

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.endpoints import STEP_ORDER
from netvigil.model.vocabulary import Technique, VerdictClass, klass_of
from tests.test_vocabulary import _sources

WORDS = {c.value for c in VerdictClass} | {t.value for t in Technique}
DOTTED = {t.value for t in Technique if "." in t.value}  # no other vocabulary spells these
ROLE_NAMES = ("klass", "tech")  # a name that holds a class or technique: klass, tech, outage_tech, techniques
ROLE_KEYWORDS = ("klass", "technique")


def _says_role(name: str | None) -> bool:
    return name is not None and any(r in name.lower() for r in ROLE_NAMES)


def _values(node: ast.AST | None):
    """The string constants an expression can evaluate to: "x", a if c else b, a or b, {k: "x"}."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, ast.IfExp):
        yield from _values(node.body)
        yield from _values(node.orelse)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            yield from _values(v)
    elif isinstance(node, ast.Dict):
        for v in node.values:
            yield from _values(v)
    elif isinstance(node, ast.DictComp):
        yield from _values(node.value)


def _target_name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _call_name(node: ast.Call) -> str | None:
    return _target_name(node.func)


def spelled_words(source: str | ast.AST, rel: str) -> list[str]:
    """`file:line: 'word' (why)` for each class or technique of a verdict spelled as a string."""
    tree = source if isinstance(source, ast.AST) else ast.parse(source, rel)
    found: dict[tuple[int, int], str] = {}

    def hit(c: ast.Constant, why: str, words: set[str] = WORDS) -> None:
        if c.value in words:
            found.setdefault((c.lineno, c.col_offset), f"{rel}:{c.lineno}: {c.value!r} ({why})")

    # parents: a rule id in a list literal and a piece of an f-string are not a technique
    exempt = {id(e) for n in ast.walk(tree) if isinstance(n, (ast.List, ast.JoinedStr))
              for e in (n.elts if isinstance(n, ast.List) else n.values)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in exempt:
            hit(node, "a technique spelled again: use the Technique member", DOTTED)
        elif isinstance(node, ast.Call):
            args = node.args[:2] if _call_name(node) == "Finding" else []
            args += [k.value for k in node.keywords if k.arg in ROLE_KEYWORDS]
            for a in args:
                for c in _values(a):
                    hit(c, f"a class or technique given to {_call_name(node)}(): use the member")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_says_role(_target_name(t)) for t in targets):
                for c in _values(node.value):
                    hit(c, "a class or technique assigned: use the member")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _says_role(node.name):
            for r in ast.walk(node):
                if isinstance(r, ast.Return):
                    for c in _values(r.value):
                        hit(c, f"a class or technique returned by {node.name}(): use the member")
    return [found[k] for k in sorted(found)]


def _analysis_sources():
    return [(rel, tree) for rel, tree in _sources() if rel.startswith("analysis/")]


def test_the_check_sees_the_old_spellings():
    """Lines the verdict engine had before it used the members, and lines that stay."""
    old = ('f = Finding("ok", None, conf["ok"], rule_ids=["web.consistent_with_control"])\n'
           'tech = "outage.partial" if share < 1.0 else "outage"\n'
           'tech = rules.technique_for("tls", hs) or "tls.failure"\n'
           'v = Verdict(domain=host, klass="ok", confidence=0.9)\n'
           'return _secondary(found, "throttled.targeted")\n'
           'KINDS = frozenset({Technique.TCP_IP_BLOCKED, "http.timeout"})\n'
           'techniques = {k: t or f"{s}.failure" if k in failing else "ok" for k in eps}\n'
           'f = Finding(kind if kind == VerdictClass.VPN else "unknown", "vpn.blocked" if vpn else None)\n'
           'def technique(self):\n    return (f.technique or f.klass) if f is not None else "ok"\n')
    got = [g.split(": ", 1)[1].split(" (")[0] for g in spelled_words(old, "x.py")]
    assert got == ["'ok'", "'outage.partial'", "'outage'", "'tls.failure'", "'ok'", "'throttled.targeted'",
                   "'http.timeout'", "'ok'", "'unknown'", "'vpn.blocked'", "'ok'"], got
    kept = ('f = Finding(VerdictClass.OK, None, rule_ids=["service.all_endpoints_ok", "http.diff"])\n'
            'ids = [f"fp:{fp.id}", "http.diff"] + [f"quic.failure:{o.failure}"]\n'
            'if step == "tls":\n    by_step = group_by_step(obs, ("dns", "tcp", "tls", "http"))\n'
            'tech = rules.technique_for("dns", o.failure)\n'
            'reasons.append("http.diff.status_code")\n')
    assert spelled_words(kept, "x.py") == []


def test_no_class_or_technique_spelled_in_the_analysis():
    sources = _analysis_sources()
    assert any(rel == "analysis/verdicts/engine.py" for rel, _ in sources), "the analysis sources were not found"
    found = [hit for rel, tree in sources for hit in spelled_words(tree, rel)]
    assert not found, "classes and techniques spelled as strings (model/vocabulary.py has the members):\n" + "\n".join(found)


def test_every_technique_the_rules_give_is_a_member():
    rules = load_rules()
    given = {f"{step}.{suffix}" for step, by_failure in rules.failures.items() for suffix in by_failure.values()}
    given |= {rules.technique_for(step, "unknown_failure: x") for step in ("tls", "http")}
    given |= {f"{step}.failure" for step in STEP_ORDER}
    assert len(given) > 15
    missing = sorted(given - {t.value for t in Technique})
    assert not missing, f"techniques the rules give with no Technique member: {missing}"
    assert {klass_of(t) for t in given} <= {c.value for c in VerdictClass}
