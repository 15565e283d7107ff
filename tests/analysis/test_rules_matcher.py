"""The one-pass fingerprint matcher gives exactly the answers of the plain per-fingerprint scan
(`fp.matches(value)` for every fingerprint, in list order)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.analysis.rules import Fingerprint, FingerprintMatcher, LiteralSet, load_rules


def _naive_literals(patterns: list[str], text: str) -> list[int]:
    return [i for i, p in enumerate(patterns) if p in text]


def _naive_http(rules, body, headers, false_positives):
    """match_http as it was written before the automaton: one scan per fingerprint."""
    def wanted(fp):
        return false_positives is None or (fp.scope == "fp") == false_positives

    found = []
    lower = {k.lower(): v for k, v in headers.items()}
    for name, fps in rules.http_headers.items():
        value = lower.get(name)
        if value is not None:
            found.extend(fp for fp in fps if fp.matches(value) and wanted(fp))
    if body:
        for flag in (True, False):
            if false_positives is None or false_positives == flag:
                found.extend(fp for fp in rules.http_body if fp.kind == "contains" and (fp.scope == "fp") == flag and fp.pattern in body)
        found.extend(fp for fp in rules.http_body if fp.kind != "contains" and wanted(fp) and fp.matches(body))
    return found


def test_literals_at_start_end_overlapping_and_duplicated():
    pats = ["abc", "bcd", "abcd", "d", "abc", "xyz", "", "cdab"]
    ls = LiteralSet(pats)
    for text in ["abcd", "abc", "zabcdz", "cdabcd", "", "xy", "dxyz", "ABCD", "abcdabc"]:
        assert ls.hits(text) == _naive_literals(pats, text), text
    assert ls.hits("abcd") == [0, 1, 2, 3, 4, 6]  # both copies of "abc", the empty pattern
    assert ls.hits("ABCD") == [6]  # case-sensitive, as `in` is


def test_literals_non_ascii_and_surrogates():
    pats = ["禁止访问", "Страница заблокирована", "é", "\ud800x", "a\u00e9"]
    ls = LiteralSet(pats)
    for text in ["<p>禁止访问</p>", "Страница заблокирована!", "cafe\u0301", "café", "\ud800x", "x\ud800", "a\u00e9b",
                 "止访"]:
        assert ls.hits(text) == _naive_literals(pats, text), text


def test_partial_multibyte_sequence_does_not_match():
    # the UTF-8 bytes of "訪" contain no byte sequence of "言" at a misaligned offset
    pats = ["言", "\u8a00", "\u00a8"]
    for text in ["訪問", "\u00e8\u00a8", "\u8a2a"]:
        assert LiteralSet(pats).hits(text) == _naive_literals(pats, text)


def _fp(i, kind, pattern, scope="nat"):
    return Fingerprint(id=f"t{i}", scope=scope, location="header.location", kind=kind, pattern=pattern, confidence_no_fp=0,
                       countries=())


def test_header_kinds_in_list_order():
    import re

    fps = [_fp(0, "prefix", "http://block"), _fp(1, "full", "http://blocked.example/"), _fp(2, "contains", "blocked"),
           _fp(3, "prefix", "http://blocked"), _fp(4, "full", "http://other/"),
           Fingerprint("t5", "fp", "header.location", "regexp", "ex.mple", 0, (), re.compile("ex.mple"))]
    m = FingerprintMatcher(fps)
    for value in ["http://blocked.example/", "http://block", "blocked", "http://other/", "", "HTTP://BLOCKED.example/"]:
        assert m.match(value) == [fp for fp in fps if fp.matches(value)], value


def test_real_fingerprints_on_real_block_pages_and_edges():
    rules = load_rules()
    body_lits = [fp.pattern for fp in rules.http_body if fp.kind == "contains"]
    samples = []
    for p in body_lits[::37]:
        samples += [p, p + "</html>", "<html>" + p, p[1:], p[:-1], "x" * 100 + p + p[:3]]
    samples.append(body_lits[0] + body_lits[1] + body_lits[2])  # several, adjacent
    samples.append("<html><title>Please Wait... | Cloudflare</title>Ray ID: 1</html>")  # false positives
    headers = [{}, {"Location": "http://warning.rt.ru/?id=1"}, {"Server": "Olfeo", "Location": "x"}]
    for body in samples:
        for h in headers:
            for flag in (None, True, False):
                assert rules.match_http(body, h, false_positives=flag) == _naive_http(rules, body, h, flag)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["ab", "ba", "aab", "b", "ü", "üa", "\ud83d\ude00", "xx"]), max_size=6, unique=True),
       st.text(alphabet="abüx\ud83d\ude00", max_size=30))
def test_literals_match_plain_scan(pats, text):
    assert LiteralSet(pats).hits(text) == _naive_literals(pats, text)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_match_http_is_the_plain_scan(data):
    rules = load_rules()
    lits = [fp.pattern for fp in rules.http_body if fp.kind == "contains"]
    parts = data.draw(st.lists(st.one_of(st.sampled_from(lits), st.text(max_size=8)), max_size=5))
    body = "".join(parts)
    flag = data.draw(st.sampled_from([None, True, False]))
    assert rules.match_http(body, {}, false_positives=flag) == _naive_http(rules, body, {}, flag)


def test_required_prefix_is_certain():
    import re

    from netvigil.analysis.rules import required_prefix

    cases = {"URL .* Sp.*er Gate": "URL ", "ab*c": "a", "abc?": "ab", "ab{2}": "a", "a|bc": "", "(?i)abc": "",
             r"\.com": "", "x.y": "x", "{abc}": "", "plain": "plain", "ab+": "a", "[ab]c": "", "ab(c)": "ab"}
    for pattern, lead in cases.items():
        assert required_prefix(re.compile(pattern)) == lead, pattern
    assert required_prefix(re.compile("abc", re.IGNORECASE)) == ""


def test_regexp_fingerprints_behind_their_prefix_match_as_before():
    import re

    pats = ["URL .* Sp.*er Gate", "ab*c", "a|zz", "(?i)block", "You don.t have", "x+y", "^<html>", "end$", "Gate"]
    fps = [Fingerprint(f"r{i}", "nat", "body", "regexp", p, 0, (), re.compile(p)) for i, p in enumerate(pats)]
    fps.append(_fp(99, "contains", "Gate"))
    m = FingerprintMatcher(fps)
    texts = ["URL x Spider Gate", "URL  Sper Gate!", "ac", "abbbc", "zz", "BLOCK", "You don't have", "xxy", "y",
             "<html>end", "a", "", "u URL Spxer Gat", "You don’t have"]
    for text in texts:
        assert m.match(text) == [fp for fp in fps if fp.matches(text)], text
