"""The vocabulary is written once: no bare verdict class, technique, incident kind or
circumvention state compared in src/.

model/vocabulary.py (and analysis/outages/decision.py's `Call`) define the words as StrEnums.
A comparison or membership test in src/ against a bare string equal to one of their values
(`v.klass == "outage"`, `f.klass in ("ok", "unknown")`) is a second copy of the word that a
rename would miss; the enum member says the same thing (a StrEnum member is its string).

Some other vocabularies share words with ours (a probe step is "tls", a URL scheme "http", a
transport "quic", a circumvention path "vpn"): a comparison whose other side is named for one
of them (OTHER_WORDS) is not ours. Where a string is data of another kind, ALLOWED says so
file by file. A table of techniques (a set or dict of `dns.bogon`-like strings) is the same
copy and is caught too. One pass of `ast` over the sources, no import of the code it checks.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import netvigil
from netvigil.analysis.outages.decision import Call
from netvigil.model.vocabulary import Circumvention, IncidentKind, Technique, VerdictClass

ROOT = Path(netvigil.__file__).parent
WORDS: dict[str, str] = {}  # word -> the members that spell it ("VerdictClass.OUTAGE or ...")
for _enum in (VerdictClass, Technique, IncidentKind, Circumvention, Call):
    for _member in _enum:
        _name_of = f"{_enum.__name__}.{_member.name}"
        WORDS[_member.value] = f"{WORDS[_member.value]} or {_name_of}" if _member.value in WORDS else _name_of

# the other side of the comparison is named for another vocabulary that shares our words
OTHER_WORDS = {
    "step": "a probe step (dns, tcp, tls, http, quic: an observation's step)",
    "transport": "the throughput test's transport (tcp, quic)",
    "scheme": "a URL scheme (http, https)",
    "protocols": "a catalogue endpoint's protocols (dns, tls, http, quic, ...)",
    "protos": "a catalogue endpoint's protocols",
    "type": "an ASGI scope's type (http, websocket, lifespan)",
    "path": "the circumvention path (direct, vpn, proxy)",
    "location": "where a fingerprint matches (dns, body, header, ...)",
    "state": "a span state machine's state (ok, blocked, outage: analysis/incidents/changes.py)",
}

# (file under src/netvigil, word): why the string there is not our vocabulary
ALLOWED = {
    ("lab/fleet.py", "vpn"): "a lab vantage's kind (an ISP line or a VPN exit)",
    ("lab/runner.py", "vpn"): "a lab vantage's kind (an ISP line or a VPN exit)",
    ("targets/geo.py", "none"): "the --geo source option ('none': no database)",
}


@functools.cache
def _sources() -> tuple[tuple[str, ast.AST], ...]:
    """Every module of src/netvigil, parsed once for all the checks here."""
    return tuple((p.relative_to(ROOT).as_posix(), ast.parse(p.read_text(), str(p))) for p in sorted(ROOT.rglob("*.py")))


def _tree(source: str | ast.AST, rel: str) -> ast.AST:
    return source if isinstance(source, ast.AST) else ast.parse(source, rel)


def _name(node: ast.AST) -> str | None:
    """What the other side of a comparison is called: `o.step` -> step, `scope["type"]` ->
    type, `scope.get("type")` -> type, `urlsplit(u).scheme` -> scheme."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and node.args and isinstance(node.args[0], ast.Constant)):
        return str(node.args[0].value)
    return None


def _strings(node: ast.AST):
    """The string constants a comparison side spells out: "x", ("x", "y"), {"x"}, frozenset({...})."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for e in node.elts:
            yield from _strings(e)
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
          and node.func.id in ("frozenset", "set", "tuple") and len(node.args) == 1):
        yield from _strings(node.args[0])


def bare_words(source: str | ast.AST, rel: str) -> list[str]:
    """`file:line: "word" (use Enum.MEMBER)` for each bare vocabulary string compared in SOURCE."""
    found = []
    for node in ast.walk(_tree(source, rel)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        for a, op, b in zip(sides, node.ops, sides[1:]):
            if not isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                continue
            for const_side, other in ((a, b), (b, a)):
                if _name(other) in OTHER_WORDS:
                    continue
                for c in _strings(const_side):
                    if c.value in WORDS and (rel, c.value) not in ALLOWED:
                        found.append(f"{rel}:{c.lineno}: {c.value!r} (use {WORDS[c.value]})")
    return found


TECHNIQUES = {w for w in WORDS if "." in w}  # `dns.bogon`: no other vocabulary spells these


def technique_tables(source: str | ast.AST, rel: str) -> list[str]:
    """`file:line: [...]` for each table of techniques spelled as strings: a set, tuple, list
    or dict literal whose items (keys) are all plain strings, one of them a dotted technique."""
    found = []
    for node in ast.walk(_tree(source, rel)):
        items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, (ast.Set, ast.Tuple, ast.List)) else None
        if not items or not all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
            continue
        words = [i.value for i in items if i.value in TECHNIQUES]
        if words and not rel.endswith("model/vocabulary.py"):
            found.append(f"{rel}:{node.lineno}: {words} (use Technique members)")
    return found


def test_the_check_sees_a_bare_word_and_passes_the_others():
    src = ('if v.klass == "outage" or f.klass not in ("ok", VerdictClass.UNKNOWN):\n    pass\n'
           'if "quic" in broken or inc.kind != "censorship":\n    pass\n'
           'if o.step == "tls" or urlsplit(u).scheme in ("http", "https") or scope["type"] == "http":\n    pass\n'
           'if v.klass == VerdictClass.OK or name == "tls.mitm":\n    pass\n')
    got = bare_words(src, "x.py")
    assert [g.split(": ", 1)[1] for g in got] == [
        "'outage' (use VerdictClass.OUTAGE or Technique.OUTAGE or IncidentKind.OUTAGE or Call.OUTAGE)",
        "'ok' (use VerdictClass.OK)", "'quic' (use VerdictClass.QUIC)",
        "'censorship' (use IncidentKind.CENSORSHIP or Call.CENSORSHIP)",
        "'tls.mitm' (use Technique.TLS_MITM)"], got
    assert bare_words('if path in ("direct", "vpn"):\n    pass\n', "x.py") == []
    assert bare_words('if v.kind == "vpn":\n    pass\n', "lab/fleet.py") == []  # ALLOWED
    assert bare_words('if v.kind == "vpn":\n    pass\n', "lab/other.py") != []


def test_no_bare_vocabulary_string_in_a_comparison():
    assert len(_sources()) > 100, "the source tree was not found"
    found = [hit for rel, tree in _sources() for hit in bare_words(tree, rel)]
    assert not found, "bare vocabulary strings (model/vocabulary.py has the enum members):\n" + "\n".join(found)


def test_no_table_of_techniques_spelled_as_strings():
    assert technique_tables('T = {"outage", "outage.partial"}\nD = {"tls.mitm": 2}\n', "x.py") == [
        "x.py:1: ['outage.partial'] (use Technique members)", "x.py:2: ['tls.mitm'] (use Technique members)"]
    assert technique_tables('S = ("dns", "tcp")\nR = [f"fp:{x}", "http.diff"]\n', "x.py") == []  # steps; rule ids
    found = [hit for rel, tree in _sources() for hit in technique_tables(tree, rel)]
    assert not found, "tables of techniques as bare strings:\n" + "\n".join(found)


def test_every_allowed_place_still_has_its_string():
    """An ALLOWED entry whose string is gone is stale: the list stays the short list of places
    where the word is data of another kind."""
    for (rel, word), why in ALLOWED.items():
        assert f'"{word}"' in (ROOT / rel).read_text(), (rel, word, why)
