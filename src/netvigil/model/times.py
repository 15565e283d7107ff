"""Measurement and store times, parsed in one place.

Every time netvigil keeps is UTC text `YYYY-MM-DD HH:MM:SS` (OONI's `measurement_start_time`
form, also the store's DateTime('UTC') text). API queries may give shorter forms.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from netvigil.errors import UsageError

FORMAT = "%Y-%m-%d %H:%M:%S"
# the one form a measurement's times take (ASCII digits only)
TIME_RE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\Z")
# a time the store's DateTime('UTC') keeps as written (1970-2099)
STORABLE_RE = re.compile(r"\A(19[7-9][0-9]|20[0-9][0-9])-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\Z")
# what an API query may give: a day, a day and a minute, or a full time; T and Z allowed
QUERY_RE = re.compile(r"\A([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T]([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?Z?\Z")
# a time bucket's length: a count (at most 4 digits: up to 27 years) and a unit (10m, 1h, 1d)
BUCKET_RE = re.compile(r"\A([0-9]{1,4})\s*(m|min|h|d)\Z")
_UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400}
# a time of day, HH:MM (lab scenarios write a window's edges so)
CLOCK_RE = re.compile(r"\A([0-9]{1,2}):([0-9]{2})\Z")


def stored(text: str) -> str:
    """The store's text of a time: seconds precision, a space between date and time."""
    return text[:19].replace("T", " ")


@lru_cache(maxsize=1 << 16)
def epoch(text: str) -> float:
    """Seconds since 1970 of a time (its first 19 characters). Cached: a round's verdicts share
    one time. Raises ValueError for text that is not a time."""
    head = text[:19]
    if TIME_RE.match(head):  # the usual form: fromisoformat is 20x cheaper than strptime
        return datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp()
    return datetime.strptime(head, FORMAT).replace(tzinfo=timezone.utc).timestamp()


def parse(text: str) -> datetime:
    """The UTC datetime of a time (its first 19 characters; a T separator is accepted)."""
    return datetime.strptime(stored(text), FORMAT).replace(tzinfo=timezone.utc)


def naive(text: str) -> datetime:
    """The datetime of a time without its zone (its first 19 characters; a T separator is
    accepted), for arithmetic among times that are all UTC: the dashboard's windows, charts
    and timelines. Raises ValueError for text that is not a time."""
    return datetime.strptime(stored(text), FORMAT)


def clock(text: str) -> timedelta | None:
    """A time of day written HH:MM (up to 24:00) as the time since midnight; None when TEXT is
    not of that form. Raises ValueError for one out of range (25:00, 10:61)."""
    m = CLOCK_RE.match(text)
    if not m:
        return None
    h, mins = int(m.group(1)), int(m.group(2))
    if h > 24 or mins > 59:
        raise ValueError(text)
    return timedelta(hours=h, minutes=mins)


def shift(text: str, seconds: float) -> str:
    """A time moved by `seconds` (its first 19 characters; a T separator is accepted).

    The usual fixed form goes through fromisoformat and isoformat, ~7x cheaper than strptime
    and strftime (benchmarks/bench_times.py); anything else (one-digit fields, non-ASCII digits, years before 1000, bad
    text) takes the strptime path, so every input gives what it always gave, errors included
    (tests/test_times_shift.py compares the two on generated inputs)."""
    head = stored(text)
    if TIME_RE.match(head):
        try:
            moved = datetime.fromisoformat(head) + timedelta(seconds=seconds)
        except (ValueError, OverflowError, TypeError):
            pass  # the strptime path below raises its own error, as before
        else:
            if moved.year >= 1000:  # strftime writes earlier years without padding
                return moved.isoformat(" ", "seconds")
    return (datetime.strptime(head, FORMAT) + timedelta(seconds=seconds)).strftime(FORMAT)


def from_query(value: str) -> str | None:
    """A query's time in the stored form, or None when it is not a real date and time."""
    m = QUERY_RE.match(value)
    if not m:
        return None
    day, hh, mm, ss = m.groups()
    text = f"{day} {hh or '00'}:{mm or '00'}:{ss or '00'}"
    try:
        datetime.strptime(text, FORMAT)
    except ValueError:
        return None
    return text


def bucket_seconds(bucket: str) -> int:
    """The length of a time bucket written like 10m, 1h or 1d: one reading for the API, the
    export and the dashboard's timelines, so a bucket means the same everywhere."""
    m = BUCKET_RE.match(bucket.strip().lower())
    if not m or int(m.group(1)) == 0:
        raise UsageError(f"bad bucket {bucket!r}", hint="use e.g. 10m, 1h or 1d")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def utc_text(ts: int | None) -> str | None:
    """Epoch seconds -> "YYYY-MM-DD HH:MM:SS" UTC (the clock of every netvigil record)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime(FORMAT)


def parse_utc(text: str, *, where: str = "") -> int:
    """Parse "YYYY-MM-DD HH:MM[:SS]" (or ISO with T/Z) as UTC epoch seconds."""
    cleaned = text.strip().replace("T", " ").removesuffix("Z").removesuffix("+00:00")
    for fmt in (FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return int(datetime.strptime(cleaned, fmt).replace(tzinfo=timezone.utc).timestamp())
        except ValueError:
            continue
    raise UsageError(f"not a UTC time: {text!r}", where=where or None,
                     hint="use YYYY-MM-DD HH:MM:SS")
