"""Query parameters of the read API and the pages, checked by netvigil (not FastAPI, whose
422 the docs do not promise): a bad one is a 400 (Rejected) naming it and what it expects."""

from __future__ import annotations

import re

from fastapi import Request

from netvigil.errors import Rejected, UsageError
from netvigil.model import times

CC_RE = re.compile(r"^[A-Za-z]{2}$")
ASN_RE = re.compile(r"^(AS)?\d{1,10}$", re.I)
TIME_RE = times.QUERY_RE
SERVICE_RE = re.compile(r"^[a-z0-9_.-]{1,64}$")


def norm_cc(cc: str | None) -> str | None:
    if cc is None or cc == "":
        return None
    if not CC_RE.match(cc):
        raise Rejected(f"query parameter 'country' is {cc[:20]!r}, expected a two-letter code like RU")
    return cc.upper()


def norm_asn(asn: str | None) -> str | None:
    if asn is None or asn == "":
        return None
    if not ASN_RE.match(asn):
        raise Rejected(f"query parameter 'asn' is {asn[:20]!r}, expected like AS12389")
    return "AS" + asn.upper().removeprefix("AS")


def norm_service(service: str | None, known: set[str] | None = None) -> str | None:
    """A catalogue name; with `known`, one of those (else a 400 listing them)."""
    if service is None or service == "":
        return None
    if not SERVICE_RE.match(service):
        raise Rejected(f"query parameter 'service' is {service[:20]!r}, expected a catalogue name like twitter")
    if known is not None and service not in known:
        raise Rejected(f"query parameter 'service' is {service!r}, not a known service; known: "
                       f"{', '.join(sorted(known))}")
    return service


def known_services(request: Request) -> set[str]:
    """The catalogue's services, control, and any service the store has status for."""
    from netvigil.report.text import known_services as catalogue

    seen = {r.service for r in (request.app.state.nv.pump.status() or [])}
    return set(catalogue()) | {"control"} | seen


PATH_VALUES = ("direct", "vpn", "proxy", "any")


def norm_path(path: str | None) -> str:
    """The measurement path: direct (the default: what a user on the network sees), vpn,
    proxy, or any (every path mixed)."""
    if path is None or path == "":
        return "direct"
    if path not in PATH_VALUES:
        raise Rejected(f"query parameter 'path' is {path[:20]!r}, expected {', '.join(PATH_VALUES)}")
    return path


def int_param(value: str | None, name: str, default: int, lo: int, hi: int) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise Rejected(f"query parameter {name!r} is {value[:20]!r}, expected a whole number") from None
    if not lo <= n <= hi:
        raise Rejected(f"query parameter {name!r} is {n}, expected {lo} to {hi}")
    return n


def bool_param(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    v = value.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise Rejected(f"query parameter {name!r} is {value[:20]!r}, expected true or false")


def norm_time(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not TIME_RE.match(value):
        raise Rejected(f"query parameter {name!r} is {value[:30]!r}, expected 'YYYY-MM-DD[ HH:MM[:SS]]' UTC")
    text = times.from_query(value)
    if text is None:
        raise Rejected(f"query parameter {name!r} is {value[:30]!r}, which is not a real date and time")
    return text


TECHNIQUE_RE = re.compile(r"^[a-z_]{1,20}(\.[a-z_]{1,40})?$")


def norm_technique(technique: str | None) -> str | None:
    if technique is None or technique == "":
        return None
    if not TECHNIQUE_RE.match(technique):
        raise Rejected(f"query parameter 'technique' is {technique[:30]!r}, expected like tls or tls.reset_after_hello")
    return technique


ID_RE = re.compile(r"^[0-9A-Za-z._:-]{1,200}$")


def norm_bucket(bucket: str) -> str:
    """A bucket read as the store's aggregates read it (model/times.bucket_seconds); a 400 if bad."""
    try:
        times.bucket_seconds(bucket)
    except UsageError:
        raise Rejected(f"query parameter 'bucket' is {bucket[:20]!r}, expected like 10m, 1h or 1d") from None
    return bucket


def page_params(request: Request, default: int, hi: int) -> tuple[int, int]:
    q = request.query_params
    return (int_param(q.get("limit"), "limit", default, 1, hi), int_param(q.get("offset"), "offset", 0, 0, 10**9))


def check_format(fmt: str, parquet: bool = False) -> str:
    """json and csv everywhere; parquet for the lists with a typed record (export.KINDS)."""
    allowed = ("json", "csv", "parquet") if parquet else ("json", "csv")
    if fmt not in allowed:
        raise Rejected(f"query parameter 'format' is {fmt[:20]!r}, expected {', '.join(allowed[:-1])} or {allowed[-1]}")
    return fmt
