"""The read API (/api/v1/...): status, verdicts, aggregates, incidents, measurements, exports.

Shapes follow OONI's API where one exists (`/api/v1/measurement/{uid}` returns the stored
measurement; lists answer {"metadata": {offset, limit, count, next_url}, "results": [...]}).
Every list takes `format=json|csv` for export (CSV cells holding lists/objects are JSON);
status, verdicts, aggregates and incidents also `format=parquet` (typed columns: report/export.py).
Query parameters are checked (country code, ASN, times) and a bad one is a 400 naming it.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from netvigil.collector.intake import Rejected
from netvigil.collector.routes import read_body, require_admin
from netvigil.report.enrich import with_rates_from
from netvigil.report.export import PARQUET_MEDIA_TYPE, to_csv, to_parquet

router = APIRouter(prefix="/api/v1")

CC_RE = re.compile(r"^[A-Za-z]{2}$")
ASN_RE = re.compile(r"^(AS)?\d{1,10}$", re.I)
BUCKET_RE = re.compile(r"^\d{1,3}[mhd]$")
TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$")
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


def norm_service(service: str | None) -> str | None:
    if service is None or service == "":
        return None
    if not SERVICE_RE.match(service):
        raise Rejected(f"query parameter 'service' is {service[:20]!r}, expected a catalogue name like twitter")
    return service


def norm_time(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    m = TIME_RE.match(value)
    if not m:
        raise Rejected(f"query parameter {name!r} is {value[:30]!r}, expected 'YYYY-MM-DD[ HH:MM[:SS]]' UTC")
    day, hh, mm, ss = m.groups()
    text = f"{day} {hh or '00'}:{mm or '00'}:{ss or '00'}"
    try:
        datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise Rejected(f"query parameter {name!r} is {value[:30]!r}, which is not a real date and time") from None
    return text


def builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)


def listing(request: Request, rows: list[dict], *, offset: int, limit: int, fmt: str,
            has_more: bool, name: str) -> Response:
    """One page of a list: JSON with metadata, or an export file (CSV, Parquet) whose next
    page, if any, is in the Link header (rel="next")."""
    next_url = page_url(request, offset=offset + limit, limit=limit) if has_more else None
    if fmt in ("csv", "parquet"):
        return export_file(rows, fmt, name, next_url)
    body = {"metadata": {"offset": offset, "limit": limit, "count": len(rows), "next_url": next_url},
            "results": rows}
    return Response(msgspec.json.encode(body), media_type="application/json")


def page_url(request: Request, **params) -> str:
    """This request's URL with `params` set: absolute from the configured public URL, else
    relative; never from the Host header, which the client chooses."""
    url = request.url.include_query_params(**params)
    base = request.app.state.nv.settings.public_url or ""
    return f"{base.rstrip('/')}{url.path}?{url.query}"


def export_file(rows: list[dict], fmt: str, name: str, next_url: str | None = None) -> Response:
    """`rows` as a CSV or Parquet download; the next page, if any, in the Link header."""
    headers = {"content-disposition": f'attachment; filename="{name}.{fmt}"'}
    if next_url:
        headers["link"] = f'<{next_url}>; rel="next"'
    if fmt == "csv":
        return Response(to_csv(rows), media_type="text/csv", headers=headers)
    return Response(to_parquet(name, rows), media_type=PARQUET_MEDIA_TYPE, headers=headers)


def check_format(fmt: str, parquet: bool = False) -> str:
    """json and csv everywhere; parquet for the lists with a typed record (export.KINDS)."""
    allowed = ("json", "csv", "parquet") if parquet else ("json", "csv")
    if fmt not in allowed:
        raise Rejected(f"query parameter 'format' is {fmt[:20]!r}, expected {', '.join(allowed[:-1])} or {allowed[-1]}")
    return fmt


def timed(request: Request, name: str, t0: float) -> None:
    request.app.state.nv.metrics.api_seconds.labels(name).observe(time.perf_counter() - t0)


@router.get("/status", tags=["api"], summary="Current status per country / network / service")
async def status(request: Request, country: str | None = None, asn: str | None = None,
                 service: str | None = None, format: str = "json"):
    t0 = time.perf_counter()
    pump = request.app.state.nv.pump
    args = {"country": norm_cc(country), "asn": norm_asn(asn), "service": norm_service(service)}
    rows = pump.status(**args)  # the read model the analysis pump keeps current
    if rows is None:
        rows = await pump.call("status", **args)
    out = [builtins(r) for r in rows]
    timed(request, "status", t0)
    fmt = check_format(format, parquet=True)
    if fmt in ("csv", "parquet"):
        return export_file(out, fmt, "status")
    return Response(msgspec.json.encode({"results": out, "count": len(out)}), media_type="application/json")


@router.get("/verdicts", tags=["api"], summary="Verdicts (one per measurement and service), paged")
async def verdicts(request: Request, country: str | None = None, asn: str | None = None,
                   service: str | None = None, since: str | None = None, until: str | None = None,
                   limit: int = Query(100, ge=1, le=10000), offset: int = Query(0, ge=0, le=10**9),
                   format: str = "json"):
    t0 = time.perf_counter()
    fmt = check_format(format, parquet=True)
    rows = await request.app.state.nv.pump.call(
        "verdicts", country=norm_cc(country), asn=norm_asn(asn), service=norm_service(service),
        since=norm_time(since, "since"), until=norm_time(until, "until"), limit=limit + 1, offset=offset)
    out = [builtins(r) for r in rows[:limit]]
    timed(request, "verdicts", t0)
    return listing(request, out, offset=offset, limit=limit, fmt=fmt, has_more=len(rows) > limit, name="verdicts")


@router.get("/aggregates", tags=["api"], summary="Counts per (country, network, service, time bucket)")
async def aggregates(request: Request, country: str | None = None, asn: str | None = None,
                     service: str | None = None, since: str | None = None, until: str | None = None,
                     bucket: str = "1h", limit: int = Query(10000, ge=1, le=100000),
                     offset: int = Query(0, ge=0, le=10**9), format: str = "json"):
    t0 = time.perf_counter()
    fmt = check_format(format, parquet=True)
    if not BUCKET_RE.match(bucket) or int(bucket[:-1]) == 0:
        raise Rejected(f"query parameter 'bucket' is {bucket[:20]!r}, expected like 10m, 1h or 1d")
    rows = await request.app.state.nv.pump.call(
        "aggregates", country=norm_cc(country), asn=norm_asn(asn), service=norm_service(service),
        since=norm_time(since, "since"), until=norm_time(until, "until"), bucket=bucket)
    page = [builtins(r) for r in rows[offset:offset + limit]]
    timed(request, "aggregates", t0)
    return listing(request, page, offset=offset, limit=limit, fmt=fmt,
                   has_more=len(rows) > offset + limit, name="aggregates")


@router.get("/incidents", tags=["api"], summary="Incidents with networks, techniques and evidence")
async def incidents(request: Request, country: str | None = None, service: str | None = None,
                    ongoing: bool | None = None, limit: int = Query(1000, ge=1, le=10000),
                    offset: int = Query(0, ge=0, le=10**9), format: str = "json"):
    from netvigil.report.text import incident_text

    fmt = check_format(format, parquet=True)
    rows = await request.app.state.nv.pump.call(
        "incidents", country=norm_cc(country), service=norm_service(service), ongoing=ongoing)
    page = []
    for inc in rows[offset:offset + limit]:
        d = builtins(inc)
        d["text"] = incident_text(inc)
        page.append(d)
    return listing(request, page, offset=offset, limit=limit, fmt=fmt,
                   has_more=len(rows) > offset + limit, name="incidents")


@router.get("/incidents/{incident_id}", tags=["api"], summary="One incident with its text")
async def incident(request: Request, incident_id: str):
    from netvigil.report.text import incident_text

    if not re.match(r"^[0-9A-Za-z._:-]{1,200}$", incident_id):
        raise Rejected(f"incident id {incident_id[:40]!r} is malformed")
    inc = await request.app.state.nv.pump.call("incident", id=incident_id)
    if inc is None:
        raise Rejected(f"incident {incident_id!r} not found", 404)
    inc = await with_rates_from(request.app.state.nv.pump, inc)
    d = builtins(inc)
    d["text"] = incident_text(inc)
    return d


@router.get("/incidents/{incident_id}/chart.{ext}", tags=["api"], summary="Incident chart (svg or png)")
async def incident_chart(request: Request, incident_id: str, ext: str):
    from netvigil.report.chart import chart_for_incident

    if ext not in ("svg", "png"):
        raise Rejected(f"chart format {ext[:10]!r} is not supported (svg or png)", 404)
    inc = await request.app.state.nv.pump.call("incident", id=incident_id)
    if inc is None:
        raise Rejected(f"incident {incident_id!r} not found", 404)
    data = await chart_for_incident(request.app.state.nv.pump, inc, ext)
    return Response(data, media_type="image/svg+xml" if ext == "svg" else "image/png")


@router.get("/measurement/{measurement_uid}", tags=["api"], summary="The stored measurement (raw JSON)")
async def measurement(request: Request, measurement_uid: str):
    nv = request.app.state.nv
    if not re.match(r"^[0-9A-Za-z._-]{1,120}$", measurement_uid):
        raise Rejected(f"measurement uid {measurement_uid[:40]!r} is malformed")
    raw = nv.collector.raw(measurement_uid)
    if raw is None and nv.pump.obs is not None:
        found = await nv.pump.call("measurement", uid=measurement_uid)
        raw = msgspec.json.encode(found) if found is not None else None
    if raw is None:
        raise Rejected(f"measurement {measurement_uid!r} not found", 404)
    return Response(raw, media_type="application/json")


@router.get("/measurements", tags=["api"], summary="Measurement metadata, newest first, paged")
async def measurements(request: Request, probe_cc: str | None = None, probe_asn: str | None = None,
                       test_name: str | None = None, service: str | None = None,
                       since: str | None = None, until: str | None = None,
                       limit: int = Query(100, ge=1, le=10000), offset: int = Query(0, ge=0, le=10**9),
                       format: str = "json"):
    fmt = check_format(format)
    cc, asn, svc = norm_cc(probe_cc), norm_asn(probe_asn), norm_service(service)
    lo, hi = norm_time(since, "since"), norm_time(until, "until")
    col = request.app.state.nv.collector
    out: list[dict] = []
    skipped = 0
    more = False
    for uid in reversed(col.order):
        m = col.index[uid]
        if ((cc and m.probe_cc != cc) or (asn and m.probe_asn != asn) or (test_name and m.test_name != test_name)
                or (svc and m.service != svc) or (lo and m.measurement_start_time < lo)
                or (hi and m.measurement_start_time >= hi)):
            continue
        if skipped < offset:
            skipped += 1
            continue
        if len(out) == limit:
            more = True
            break
        out.append({"measurement_uid": m.measurement_uid, "measurement_start_time": m.measurement_start_time,
                    "probe_cc": m.probe_cc, "probe_asn": m.probe_asn, "test_name": m.test_name,
                    "input": m.input, "report_id": m.report_id, "service": m.service, "path": m.path,
                    "measurement_url": f"/api/v1/measurement/{m.measurement_uid}"})
    return listing(request, out, offset=offset, limit=limit, fmt=fmt, has_more=more, name="measurements")


# ---- admin (token) -------------------------------------------------------------------


class _NewSubscription(msgspec.Struct):
    url: str
    secret: str | None = None
    events: list[str] | None = None
    country: str | None = None
    service: str | None = None


@router.get("/admin/subscriptions", tags=["admin"], summary="List webhook subscriptions (admin token)")
async def list_subscriptions(request: Request):
    """URLs with passwords masked; secrets are never listed."""
    require_admin(request)
    return [s.public() for s in request.app.state.nv.subscriptions.all()]


@router.post("/admin/subscriptions", tags=["admin"], summary="Add a webhook subscription (admin token)")
async def add_subscription(request: Request):
    require_admin(request)
    body = await read_body(request, 16 << 10)
    try:
        new = msgspec.json.decode(body, type=_NewSubscription)
    except (msgspec.MsgspecError, RecursionError) as exc:
        raise Rejected(f"subscription: {exc}") from None
    from netvigil.errors import UsageError

    from starlette.concurrency import run_in_threadpool

    try:  # resolves the host (blocking) to check it is public
        sub = await run_in_threadpool(request.app.state.nv.subscriptions.add, new.url, secret=new.secret,
                                      events=new.events, country=new.country, service=new.service)
    except UsageError as exc:
        raise Rejected(str(exc)) from None
    out = sub.public()
    if new.secret is None:
        out["secret"] = sub.secret  # generated: shown this once, never listed
    return out


@router.delete("/admin/subscriptions/{sub_id}", tags=["admin"], summary="Remove a subscription (admin token)")
async def delete_subscription(request: Request, sub_id: str):
    require_admin(request)
    if not request.app.state.nv.subscriptions.remove(sub_id):
        raise Rejected(f"subscription {sub_id[:40]!r} not found", 404)
    return {"removed": sub_id}


@router.get("/admin/stats", tags=["admin"], summary="Collector counters (admin token)")
async def stats(request: Request):
    require_admin(request)
    nv = request.app.state.nv
    return {**nv.collector.stats, "stored": len(nv.collector.index), "open_reports":
            sum(1 for r in nv.collector.reports.values() if r["open"]), "analysis": nv.pump.error or "running",
            "analysed": nv.pump.analysed, "alerts_sent": len(nv.alerter.sent)}
