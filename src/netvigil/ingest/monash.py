"""Read the Monash IP Observatory's open series into typed time series (one per region).

Three file shapes exist (see tests/data/third_party/monash-ip-observatory/UPSTREAM-README.md):
- connectivity index per county/state per hour (Iran 2019, Venezuela 2019): `time_e` is an
  epoch "but in local time", so we subtract the country's UTC offset (monash_offsets.toml beside this module);
- latency index per adm1 region every 3 hours (Ukraine/Russia 2021-22), with its own offset;
- raw ping observations of individual addresses (Myanmar, Bago 2021): turned into the number
  of distinct responsive addresses per hour, a volume signal where silence means outage.
The kind is recognised from the header. Any bad row is an IngestError naming file:line.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import zlib
import math
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from pathlib import Path

import tomllib
from collections.abc import Mapping
from netvigil.model.signals import Series
from netvigil.errors import IngestError, UsageError

CONNECTIVITY = {"iso", "name_1", "time_e", "connectivity"}
LATENCY = {"country_iso_three_char_code", "adm1_name", "timezone_offset", "time_local", "latency_indx"}
RAW_RTT = {"ip_hash", "iso", "name_1", "name_2", "time_local_str", "rtt"}
HOUR = 3600


def detect_kind(header: list[str]) -> str | None:
    cols = set(header)
    for kind, need in (("connectivity", CONNECTIVITY), ("latency", LATENCY), ("raw_rtt", RAW_RTT)):
        if need <= cols:
            return kind
    return None


OFFSETS = Path(__file__).with_name("monash_offsets.toml")


@lru_cache(maxsize=1)
def utc_offsets() -> dict[str, float]:
    """Hours to subtract from the files' local-time stamps, per country (a fact of the source)."""
    with OFFSETS.open("rb") as fh:
        table = tomllib.load(fh).get("utc_offset_hours") or {}
    return {str(k): float(v) for k, v in table.items()}


def read_monash(path: Path | str, *, offsets: Mapping[str, float] | None = None) -> list[Series]:
    """One Series per region (county, state, adm1 region, or town for raw observations)."""
    p = Path(path)
    table = utc_offsets() if offsets is None else offsets
    try:
        fh = _open_text(p)
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror}", where=str(p)) from None
    with fh:
        try:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise IngestError("empty file, expected a Monash IP Observatory CSV", where=f"{p}:1")
            kind = detect_kind([h.strip() for h in header])
            if kind is None:
                cols = ",".join(header[:6])
                raise IngestError(f"not a Monash IP Observatory CSV (columns {cols[:80]!r})",
                                  where=f"{p}:1")
            header = [h.strip() for h in header]
            rows = _rows(reader, header, p)
            if kind == "connectivity":
                return _connectivity(rows, p, table)
            if kind == "latency":
                return _latency(rows, p)
            return _raw_rtt(rows, p, table)
        except UnicodeDecodeError as exc:
            raise IngestError(f"not UTF-8 text ({exc.reason})", where=str(p)) from None
        except csv.Error as exc:
            raise IngestError(f"malformed CSV: {exc}", where=str(p)) from None
        except (EOFError, OSError, zlib.error) as exc:  # truncated or corrupt .gz/.bz2
            raise IngestError(f"corrupt compressed file ({exc})", where=str(p)) from None


def _open_text(p: Path):
    """Plain, .gz or .bz2 CSV (by magic bytes, not by name)."""
    with p.open("rb") as raw:
        head = raw.read(3)
    if head.startswith(b"\x1f\x8b"):
        return gzip.open(p, "rt", encoding="utf-8", newline="")
    if head.startswith(b"BZh"):
        return bz2.open(p, "rt", encoding="utf-8", newline="")
    return p.open(encoding="utf-8", newline="")


def _rows(reader, header: list[str], p: Path):
    n = len(header)
    for row in reader:
        if len(row) != n:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            raise IngestError(f"{len(row)} fields, expected {n}", where=f"{p}:{reader.line_num}")
        yield reader.line_num, dict(zip(header, row))


@lru_cache(maxsize=65536)
def _dmy(text: str) -> datetime:
    return datetime.strptime(text, "%d-%b-%Y %H:%M:%S")


@lru_cache(maxsize=65536)
def _ymd_hour(text: str) -> datetime:
    """'YYYY-MM-DD HH' -> that local hour (the source counts observations per local hour)."""
    if len(text) != 13 or text[10] != " ":
        raise ValueError(text)
    return datetime.strptime(text, "%Y-%m-%d %H")


def _number(value: str, name: str, where: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise IngestError(f"{name} is not a number: {value!r}", where=where) from None
    if math.isnan(x) or math.isinf(x):
        raise IngestError(f"{name} is not a finite number: {value!r}", where=where)
    return x


def _offset(iso: str, offsets: Mapping[str, float], where: str) -> float:
    try:
        return offsets[iso]
    except KeyError:
        raise IngestError(f"no UTC offset known for country {iso!r}", where=where,
                          hint=f"add it to {OFFSETS.name}") from None


def _assemble(points: dict[tuple, dict[int, float]], meta: dict[tuple, tuple], signal: str,
              step: int, p: Path) -> list[Series]:
    out = []
    for key, by_time in points.items():
        country, region, name = meta[key]
        times = sorted(by_time)
        out.append(Series(key=name, signal=signal, times=times, values=[by_time[t] for t in times],
                          step=step, country=country, region=region, source=str(p)))
    return sorted(out, key=lambda s: s.key)


def _connectivity(rows, p: Path, offsets: Mapping[str, float]) -> list[Series]:
    points: dict[tuple, dict[int, float]] = {}
    meta: dict[tuple, tuple] = {}
    for line, r in rows:
        where = f"{p}:{line}"
        iso = r["iso"].strip()
        region = r["name_1"].strip() + (f"/{r['name_2'].strip()}" if r.get("name_2") else "")
        local = _number(r["time_e"], "time_e", where)
        value = _number(r["connectivity"], "connectivity", where)
        if not -5 <= value <= 105:  # the files hold -1 for "below zero" noise; 0..100 otherwise
            raise IngestError(f"connectivity {value} outside 0..100", where=where)
        ts = int(local - _offset(iso, offsets, where) * HOUR)
        key = (iso, region)
        meta[key] = (iso, region, f"{iso}/{region}")
        series = points.setdefault(key, {})
        if ts in series:
            raise IngestError(f"duplicate time {r.get('time_e_str', ts)} for {region}", where=where)
        series[ts] = value
    if not points:
        raise IngestError("no data rows", where=str(p))
    return _assemble(points, meta, "connectivity", HOUR, p)


def _latency(rows, p: Path) -> list[Series]:
    points: dict[tuple, dict[int, float]] = {}
    meta: dict[tuple, tuple] = {}
    for line, r in rows:
        where = f"{p}:{line}"
        iso = r["country_iso_three_char_code"].strip()
        region = r["adm1_name"].strip()
        offset = _number(r["timezone_offset"], "timezone_offset", where)
        try:
            local = _dmy(r["time_local"].strip())
        except ValueError:
            raise IngestError(f"time_local is not DD-Mon-YYYY HH:MM:SS: {r['time_local']!r}",
                              where=where) from None
        ts = int((local - timedelta(hours=offset)).replace(tzinfo=timezone.utc).timestamp())
        value = _number(r["latency_indx"], "latency_indx", where)
        key = (iso, region)
        meta[key] = (iso, region, f"{iso}/{region}")
        points.setdefault(key, {})[ts] = value
    if not points:
        raise IngestError("no data rows", where=str(p))
    return _assemble(points, meta, "latency", 3 * HOUR, p)


def _raw_rtt(rows, p: Path, offsets: Mapping[str, float]) -> list[Series]:
    """Distinct responsive addresses per hour per town; hours with none inside the span are 0."""
    seen: dict[tuple, dict[int, set]] = {}
    meta: dict[tuple, tuple] = {}
    for line, r in rows:
        where = f"{p}:{line}"
        iso = r["iso"].strip()
        region = f"{r['name_1'].strip()}/{r['name_2'].strip()}"
        _number(r["rtt"], "rtt", where)
        try:
            local = _ymd_hour(r["time_local_str"].strip()[:13])
        except ValueError:
            raise IngestError(f"time_local_str is not YYYY-MM-DD HH:MM:SS: {r['time_local_str']!r}",
                              where=where) from None
        utc = local.replace(tzinfo=timezone.utc) - timedelta(hours=_offset(iso, offsets, where))
        ts = int(utc.timestamp())
        key = (iso, region)
        meta[key] = (iso, region, f"{iso}/{region}")
        seen.setdefault(key, {}).setdefault(ts, set()).add(r["ip_hash"])
    if not seen:
        raise IngestError("no data rows", where=str(p))
    points = {}
    for key, by_hour in seen.items():
        lo, hi = min(by_hour), max(by_hour)
        if (hi - lo) // HOUR > 24 * 366 * 5:
            raise IngestError(f"observations of {key[1]} span more than 5 years: corrupt times?",
                              where=str(p))
        points[key] = {t: float(len(by_hour.get(t, ()))) for t in range(lo, hi + 1, HOUR)}
    return _assemble(points, meta, "volume", HOUR, p)
