"""Strict, total checks of a submitted measurement's envelope, before anything is stored.

Every identifier the analysis indexes or the dashboard shows must full-match an ASCII
pattern (a `$` would let "RU\\n" through and `\\d` would let "AS１２３８９" through), every
string has a length cap, numbers have bounds, and times are real dates between 2012 and
tomorrow: a value the analysis' store cannot read must never reach it. Each failure is a
`Rejected` whose message names the field, for a 400.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import time
from typing import Annotated, Any

import msgspec

from netvigil.errors import Rejected  # noqa: F401  (re-exported: the collector raises it)
from netvigil.model import times, uid


# \A...\Z (never ^...$): also safe for callers that use .match
TIME_RE = times.TIME_RE
CC_RE = re.compile(r"\A[A-Z]{2}\Z")
ASN_RE = re.compile(r"\AAS[0-9]{1,10}\Z")
TEST_NAME_RE = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")
UID_RE = uid.UID_RE
REPORT_ID_RE = re.compile(r"\A[0-9A-Za-z._-]{1,120}\Z")
NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z")  # annotations.service and .path

MAX_ASN = 2**32 - 1
EARLIEST = "2012-01-01 00:00:00"  # OONI's first measurements are from 2012
FUTURE_SLACK = 86400  # a probe's clock may run ahead, by at most a day
MAX_RUNTIME = 7 * 86400.0  # seconds

ENVELOPE_CAP = 64 << 10  # bytes of a measurement but its test_keys (real ones: under 2 KB)
INPUT_CAP = 2048  # one input (a URL, a host)
LIST_CAP = 64  # items of input (when a list), input_hashes, options
# free-form mappings (annotations, test_helpers, extensions): bounded in size and depth
FREE_STRING_CAP = 2048
FREE_KEY_CAP = 128
FREE_NODES_CAP = 512
FREE_DEPTH_CAP = 8


def _text(cap: int, pattern: re.Pattern | None = None, empty: bool = False) -> Any:
    """A str type msgspec checks while it decodes (in C: no cost on the ingest path)."""
    meta = {"max_length": cap}
    if pattern is not None:
        body = pattern.pattern.removeprefix(r"\A").removesuffix(r"\Z")  # (anchored again here)
        meta["pattern"] = r"\A(?:" + body + (r")?\Z" if empty else r")\Z")
    return Annotated[str, msgspec.Meta(**meta)]


_INPUT = _text(INPUT_CAP)
_TIME = _text(19, TIME_RE)
# OONI's annotations: string keys to strings (a few probes write numbers or booleans)
_ANNOTATIONS = Annotated[dict[_text(FREE_KEY_CAP), _text(FREE_STRING_CAP) | int | float | bool | None],
                         msgspec.Meta(max_length=FREE_NODES_CAP)]
_ITEMS = Annotated[list[_text(256)], msgspec.Meta(max_length=LIST_CAP)]
# envelope field -> its type with bounds: intake.Submitted is Measurement with these
CONSTRAINED: dict[str, Any] = {
    "test_name": _text(64, TEST_NAME_RE),
    "measurement_start_time": _TIME,
    "probe_cc": _text(2, CC_RE),
    "probe_asn": _text(12, ASN_RE),
    "probe_network_name": _text(256) | None,
    "probe_ip": _text(64),
    "input": _INPUT | Annotated[list[_INPUT], msgspec.Meta(max_length=LIST_CAP)] | None,
    "report_id": _text(120, REPORT_ID_RE, empty=True),
    "test_version": _text(32),
    "test_start_time": _TIME | None,
    "annotations": _ANNOTATIONS,
    "test_runtime": Annotated[float, msgspec.Meta(ge=0, le=MAX_RUNTIME)],
    "software_name": _text(64),
    "software_version": _text(64),
    "data_format_version": _text(16),
    "resolver_ip": _text(64) | None,
    "resolver_asn": _text(12, ASN_RE, empty=True) | None,
    "resolver_network_name": _text(256) | None,
    "resolver_cc": _text(2, CC_RE, empty=True) | None,
    "input_hashes": _ITEMS | None,
    "options": _ITEMS | None,
    "measurement_uid": _text(100, UID_RE, empty=True) | None,
    "probe_city": _text(128) | None,
}


def _bad(where: str, field: str, value: Any, expected: str) -> Rejected:
    shown = value[:60] if isinstance(value, str) else value
    return Rejected(f"{where}: field {field!r} is {shown!r}, expected {expected}")


_latest_at: list = [-1, ""]  # (second, the latest time accepted then)


def _latest() -> str:
    now = int(time.time())
    if _latest_at[0] != now:
        _latest_at[:] = [now, time.strftime(times.FORMAT, time.gmtime(now + FUTURE_SLACK))]
    return _latest_at[1]


@functools.lru_cache(maxsize=4096)
def _real_day(day: str) -> bool:
    try:
        dt.date(int(day[0:4]), int(day[5:7]), int(day[8:10]))
        return True
    except ValueError:
        return False


def check_time(value: str, field: str, where: str) -> None:
    """'YYYY-MM-DD HH:MM:SS' UTC (OONI's form), a real date, from 2012 to a day ahead."""
    expected = "'YYYY-MM-DD HH:MM:SS' UTC"
    if not TIME_RE.match(value):
        raise _bad(where, field, value, expected)
    if not (_real_day(value[:10]) and value[11:13] <= "23" and value[14:16] <= "59" and value[17:19] <= "59"):
        raise _bad(where, field, value, f"{expected} (a real date and time)")
    if value < EARLIEST:  # fixed-width: text order is time order
        raise _bad(where, field, value, f"a time not before {EARLIEST}")
    if value > _latest():
        raise _bad(where, field, value, "a time not more than one day in the future")


def check_asn(value: str, field: str, where: str) -> None:
    if not ASN_RE.match(value) or int(value[2:]) > MAX_ASN:
        raise _bad(where, field, value, f"like AS12389 (AS0 if unknown; at most AS{MAX_ASN})")


def _check_free(value: Any, field: str, where: str) -> None:
    """A free-form JSON mapping: strings, keys, size and depth bounded."""
    nodes = 0
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        nodes += 1
        if nodes > FREE_NODES_CAP or depth > FREE_DEPTH_CAP:
            raise Rejected(f"{where}: field {field!r} is too large (at most {FREE_NODES_CAP} values, "
                           f"nested at most {FREE_DEPTH_CAP} deep)")
        if isinstance(v, str):
            if len(v) > FREE_STRING_CAP:
                raise Rejected(f"{where}: field {field!r} has a string of {len(v)} characters "
                               f"(at most {FREE_STRING_CAP})")
        elif isinstance(v, dict):
            for k, item in v.items():
                if len(k) > FREE_KEY_CAP:
                    raise Rejected(f"{where}: field {field!r} has a key of {len(k)} characters "
                                   f"(at most {FREE_KEY_CAP})")
                stack.append((item, depth + 1))
        elif isinstance(v, list):
            stack.extend((item, depth + 1) for item in v)
        elif isinstance(v, float) and not math.isfinite(v):
            raise Rejected(f"{where}: field {field!r} has a number that is not finite")


def _time_ok(value: str) -> bool:
    """check_time's question, fast, for a value that already matched TIME_RE."""
    return (EARLIEST <= value <= _latest() and value[11:13] <= "23" and value[14:16] <= "59"
            and value[17:19] <= "59" and _real_day(value[:10]))


def check_envelope(m, where: str = "measurement") -> None:
    """What the types of CONSTRAINED cannot say: real dates in bounds, ASN values, the
    free-form mappings, annotations.service and .path. `m` is an intake.Submitted."""
    if not _time_ok(m.measurement_start_time):
        check_time(m.measurement_start_time, "measurement_start_time", where)  # raises, saying why
    if m.test_start_time is not None and not _time_ok(m.test_start_time):
        check_time(m.test_start_time, "test_start_time", where)
    for field, asn in (("probe_asn", m.probe_asn), ("resolver_asn", m.resolver_asn)):
        if asn and len(asn) == 12 and int(asn[2:]) > MAX_ASN:  # (the pattern is checked while decoding)
            check_asn(asn, field, where)
    if m.test_helpers:
        _check_free(m.test_helpers, "test_helpers", where)
    if m.extensions:
        _check_free(m.extensions, "extensions", where)
    ann = m.annotations
    if ann and ("service" in ann or "path" in ann):
        for key in ("service", "path"):
            value = ann.get(key)
            if value is not None and not (isinstance(value, str) and NAME_RE.match(value)):
                raise _bad(where, f"annotations.{key}", value if isinstance(value, str) else type(value).__name__,
                           "lowercase letters, digits, '.', '_' or '-' (at most 64)")


def check_indexed(m, where: str = "measurement") -> None:
    """The fields the analysis indexes and publishes (time, country, network, test), for a
    measurement read back from the log, which an older collector may have let in unchecked."""
    check_time(m.measurement_start_time, "measurement_start_time", where)
    if not CC_RE.match(m.probe_cc):
        raise _bad(where, "probe_cc", m.probe_cc, "two upper-case letters like RU (ZZ if unknown)")
    check_asn(m.probe_asn, "probe_asn", where)
    if not TEST_NAME_RE.match(m.test_name):
        raise _bad(where, "test_name", m.test_name, "a lowercase test name like web_connectivity")
