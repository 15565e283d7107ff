"""times.shift's fast path gives what the strptime implementation gave, for every input.

The reference below is the implementation shift had before its fromisoformat fast path,
kept verbatim. Inputs are generated around the forms strptime accepts (one-digit fields,
a T separator, non-ASCII digits, trailing text, years before 1000, out-of-range fields)
and the offsets include fractions, negatives and ones that leave datetime's range; the
result or the exception (type and message) must be the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.model import times

BUDGET = settings(max_examples=300, deadline=None, derandomize=True)
FORMAT = "%Y-%m-%d %H:%M:%S"


def reference_shift(text: str, seconds: float) -> str:
    return (datetime.strptime(times.stored(text), FORMAT) + timedelta(seconds=seconds)).strftime(FORMAT)


def outcome(fn, text, seconds):
    try:
        return ("ok", fn(text, seconds))
    except Exception as exc:  # the comparison is the point: any exception, same type and text
        return (type(exc).__name__, str(exc))


ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _field(width: int, high: int) -> st.SearchStrategy[str]:
    """A field's digits: usually well-formed, sometimes one digit short, out of range, or odd."""
    return st.one_of(
        st.integers(0, high).map(lambda n: f"{n:0{width}d}"),
        st.integers(0, 9).map(str),
        st.integers(high + 1, 10 ** width - 1).map(lambda n: f"{n:0{width}d}"),
        st.sampled_from([" 1", "0", "-1", "x" * width]),
    )


@st.composite
def time_texts(draw) -> str:
    year = draw(st.one_of(st.integers(1970, 2099), st.integers(0, 9999)).map(lambda y: f"{y:04d}"))
    month, day = draw(_field(2, 12)), draw(_field(2, 31))
    hour, minute, second = draw(_field(2, 23)), draw(_field(2, 59)), draw(_field(2, 61))
    sep = draw(st.sampled_from([" ", "T", "t", "  ", ""]))
    text = f"{year}-{month}-{day}{sep}{hour}:{minute}:{second}"
    if draw(st.integers(0, 9)) == 0:
        text = text.translate(ARABIC)
    tail = draw(st.sampled_from(["", "", "Z", ".123456", "+01:00", " extra", "T"]))
    return text + tail


offsets = st.one_of(
    st.integers(-10 ** 6, 10 ** 6),
    st.floats(-1e7, 1e7, allow_nan=False),
    st.sampled_from([0, 0.5, -0.5, 1e-7, -1e-7, 86400 * 366 * 8000, -86400 * 366 * 2100, 1e18]),
)


def test_shift_matches_the_strptime_reference():
    """Also checks the comparison proves something: the fixed form, the fallback forms and
    the errors all occur among the generated inputs."""
    seen = set()

    @BUDGET
    @given(time_texts(), offsets)
    def compare(text, seconds):
        got = outcome(times.shift, text, seconds)
        assert got == outcome(reference_shift, text, seconds)
        seen.add((got[0] == "ok", bool(times.TIME_RE.match(times.stored(text)))))

    compare()
    assert {(True, True), (True, False), (False, True), (False, False)} <= seen


@BUDGET
@given(st.text(alphabet="0123456789-: T٣Z", max_size=25), offsets)
def test_shift_matches_the_reference_on_arbitrary_text(text, seconds):
    assert outcome(times.shift, text, seconds) == outcome(reference_shift, text, seconds)


def test_known_values():
    assert times.shift("2022-02-26 23:30:00", 3600) == "2022-02-27 00:30:00"
    assert times.shift("2022-02-26T23:30:00Z", -0.5) == "2022-02-26 23:29:59"  # truncated, as strftime did
    assert times.shift("2022-2-6 3:3:0", 1) == "2022-02-06 03:03:01"  # one-digit fields, as strptime took
    assert times.shift("0999-12-31 23:59:59", 0) == "999-12-31 23:59:59"  # strftime's unpadded year
