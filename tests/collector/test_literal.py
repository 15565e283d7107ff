"""model/literal.py answers what the bytes.find loops and the regex scan it replaced in intake
and scrub answered (issue #13: the same bytes stored, faster): every occurrence, left to right,
none overlapping the previous one, on texts made to hold overlapping and repeated needles."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.model import literal, scrub


def _find_loop(haystack: bytes, needle: bytes) -> list[int]:
    """The loop intake and scrub used before: bytes.find resuming at each match's end."""
    out, i = [], haystack.find(needle)
    while i >= 0:
        out.append(i)
        i = haystack.find(needle, i + len(needle))
    return out


# a small alphabet makes overlapping occurrences ("aa" in "aaaa", "1.1" in "1.1.1") common
_TEXT = st.binary(max_size=300).map(lambda b: bytes(b"a1.:\\u0"[x % 7] for x in b))
_NEEDLE = st.binary(min_size=1, max_size=5).map(lambda b: bytes(b"a1.:\\u0"[x % 7] for x in b))


@settings(max_examples=400, deadline=None)
@given(_TEXT, _NEEDLE)
def test_find_all_is_the_find_loop(haystack: bytes, needle: bytes) -> None:
    assert literal.find_all(haystack, needle) == _find_loop(haystack, needle)
    assert literal.contains(haystack, needle) == (needle in haystack)


def test_overlapping_needles() -> None:
    assert literal.find_all(b"aaaaa", b"aa") == [0, 2]
    assert literal.find_all(b"1.1.1.1.1.1.1", b"1.1.1.1") == [0]
    assert literal.find_all(b"x:::y::", b"::") == [1, 5]
    assert literal.find_all(b"", b"a") == []


# JSON text with \u00XX escapes of address characters and of others (a Go probe's \u003c, \u0026)
_ESCAPE = st.sampled_from([b"\\u002e", b"\\u002E", b"\\u0031", b"\\u003a", b"\\u0041", b"\\u0066",
                           b"\\u003c", b"\\u003e", b"\\u0026", b"\\u0047", b"\\u0067", b"\\u00", b"\\\\u0030",
                           b"\\u2e", b"x", b"203.0.113.7", b'"', b"\\n"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_ESCAPE, max_size=60))
def test_escaped_address_check_is_the_regex_scan(parts: list[bytes]) -> None:
    raw = b"".join(parts)  # up to 60 escapes: both sides of the few-escapes cut-over
    assert scrub._escapes_address(raw) == (scrub._ESCAPED_ADDRESS_CHAR.search(raw) is not None)


def test_scrub_finds_the_address_after_many_escapes() -> None:
    """A Go probe's body (every < > & escaped) with the address spelled escaped after them all."""
    body = b"\\u003ch1\\u003e" * 40 + b"203\\u002e0.113.7"
    raw = b'{"probe_ip":"127.0.0.1","test_keys":{"body":"' + body + b'"}}'
    out = scrub.scrub(raw, scrub.targets("203.0.113.7"))
    assert b"203.0.113.7" not in out and out.count(b"127.0.0.1") == 2
