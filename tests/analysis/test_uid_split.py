"""decode_named finds test_keys' text in a line without msgspec scanning it twice (model/uid.py
`_split`: a guess, proven by decoding the line with a stand-in in its place). Whatever the
line, the result is the plain two-pass decode's (`_decode_in_two`): the same Measurement and
uid, or the same error. Lines are built to mislead the guess: "test_keys" as a nested key, in
strings and in other fields, twice at the top level, first or last, with odd spacing, the
stand-in's own text elsewhere, and broken lines (cut short, a byte changed)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.model.uid import _decode_in_two, _split, decode_named

BUDGET = settings(max_examples=300, deadline=None, derandomize=True)

ENVELOPE = {"test_name": "web_connectivity", "measurement_start_time": "2024-02-12 20:33:47",
            "probe_cc": "IT", "probe_asn": "AS137", "probe_ip": "127.0.0.1", "report_id": "r1",
            "input": "http://example.org/", "annotations": {"platform": "linux", "n": {"x": [1, {}]}},
            "test_helpers": {"backend": {"address": "https://th.example", "type": "https"}}}

# text that looks like the parts the guess relies on
_TRICKY = st.sampled_from(['"test_keys": {', '}', '{"\\u0000":0}', '{"\u0000":0}', '"test_keys"', '\\"test_keys\\":{}',
                           '}}', '{', ':', ' ', 'test_keys', '"'])
_text = st.text(max_size=6) | _TRICKY
_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | _text
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(["test_keys", "a", "\u0000", "}"]) | _text, inner, max_size=3),
                       max_leaves=12)


def _outcome(line: bytes, fn) -> Any:
    try:
        return fn(line)
    except Exception as exc:  # noqa: BLE001  (msgspec's, RecursionError, UnicodeDecodeError: compared)
        return ("raised", type(exc).__name__, str(exc))


def _same(line: bytes) -> None:
    """decode_named of the line, and of a view of it (as ingest's reader passes), is the two passes'."""
    want = _outcome(line, _decode_in_two)
    assert _outcome(line, decode_named) == want, line[:300]
    assert _outcome(memoryview(line), decode_named) == want, line[:300]


@st.composite
def lines(draw) -> bytes:
    env: dict[str, Any] = dict(ENVELOPE)
    for key in draw(st.lists(st.sampled_from(["extra", "annotations", "input", "options", "id"]), max_size=3)):
        env[key] = draw(_values)
    test_keys = draw(st.dictionaries(st.sampled_from(["test_keys", "requests", "}", "control"]) | _text, _values, max_size=4))
    keys = [k for k in env] + ["test_keys"]
    order = draw(st.permutations(keys))
    parts = []
    for k in order:
        value = test_keys if k == "test_keys" else env[k]
        sep = draw(st.sampled_from([":", ": ", " :", " : ", ":\t\n "]))
        parts.append(json.dumps(k) + sep + draw(st.sampled_from([json.dumps, lambda v: json.dumps(v, ensure_ascii=False),
                                                                  lambda v: msgspec.json.encode(v).decode()]))(value))
    if draw(st.booleans()):  # a second top-level test_keys, before or after
        dup = '"test_keys": ' + json.dumps(draw(_values))
        parts.insert(draw(st.integers(0, len(parts))), dup)
    line = ("{" + ", ".join(parts) + "}" + draw(st.sampled_from(["", "\n", " \r\n", "\t"]))).encode()
    broken = draw(st.sampled_from(["no", "no", "no", "cut", "byte"]))
    if broken == "cut":
        line = line[: draw(st.integers(0, len(line)))]
    elif broken == "byte":
        i = draw(st.integers(0, len(line) - 1))
        line = line[:i] + draw(st.sampled_from([b"}", b"{", b'"', b"\xff", b",", b"x"])) + line[i + 1:]
    return line


@BUDGET
@given(line=lines())
def test_the_split_decodes_as_the_two_passes(line):
    _same(line)


def test_the_split_is_taken_on_plain_lines_and_refused_where_unproven():
    tk = {"requests": [{"response": {"body": "<html>}}" + "x" * 100 + "</html>"}}], "test_keys": {"a": "}"}}
    plain = json.dumps({**ENVELOPE, "test_keys": tk}).encode() + b"\n"
    first = json.dumps({"test_keys": tk, **ENVELOPE}).encode()
    for line in (plain, first, msgspec.json.encode({**ENVELOPE, "test_keys": tk})):
        env, text = _split(line)
        assert msgspec.json.decode(text) == tk
        _same(line)
    # test_keys' key met first inside a key's text, or nested; the stand-in's text in the envelope; a probe
    # address to scrub; test_keys not an object; more closing braces after them than tried
    refused = [
        json.dumps({**ENVELOPE, "annotations": {'x"test_keys': {"a": "}"}}, "test_keys": tk}).encode(),
        json.dumps({**ENVELOPE, "annotations": {"test_keys": {"a": 1}}, "test_keys": tk}).encode(),
        json.dumps({**ENVELOPE, "extra": {"\u0000": 0}, "test_keys": tk}, separators=(",", ":")).encode(),
        json.dumps({**ENVELOPE, "probe_ip": "203.0.113.7", "test_keys": tk}).encode(),
        json.dumps({**ENVELOPE, "test_keys": None}).encode(),
        json.dumps({**ENVELOPE, "test_keys": tk, "deep": [{}] * 12}).encode(),
    ]
    for line in refused:
        assert _split(line) is None, line[:200]
        _same(line)


def test_a_view_is_split_within_its_ends_only():
    """A view (ingest's reader) is searched in copies of its first and last _WINDOW bytes: a
    long line splits the same; an envelope whose test_keys start past the window is refused
    (the two passes then), and the result is the same either way."""
    from netvigil.model.uid import _WINDOW

    tk = {"requests": [{"response": {"body": "<p>" + "z" * (3 * _WINDOW) + "</p>"}}]}
    long_line = json.dumps({**ENVELOPE, "test_keys": tk}).encode()
    late_key = json.dumps({**ENVELOPE, "annotations": {"pad": "p" * (2 * _WINDOW)}, "test_keys": tk}).encode()
    assert _split(memoryview(long_line)) is not None and _split(long_line) is not None
    assert _split(memoryview(late_key)) is None and _split(late_key) is not None
    for line in (long_line, late_key):
        _same(line)
