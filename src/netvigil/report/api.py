"""The read API (/api/v1/...): status, verdicts, aggregates, incidents, measurements, exports.

Shapes follow OONI's API where one exists (`/api/v1/measurement/{uid}` returns the stored
measurement; lists answer {"metadata": {offset, limit, count, total, next_url}, "results": [...]}).
Every list takes `format=json|csv` for export (CSV cells holding lists/objects are JSON);
status, verdicts, aggregates and incidents also `format=parquet` (typed columns: report/export.py).
Query parameters are checked by params.py (a bad one is a 400 naming it); every GET answers
HEAD too and carries CORS, Cache-Control and an ETag (read_http.py).
"""

from __future__ import annotations

import re
import time
import weakref
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response

from netvigil.errors import Rejected
from netvigil.model.records import Incident
from netvigil.report.enrich import latest_time, told
from netvigil.report.export import PARQUET_MEDIA_TYPE, to_csv, to_parquet
from netvigil.report.params import (ID_RE, PATH_VALUES, bool_param, check_format, int_param,  # noqa: F401
                                    known_services, norm_asn, norm_bucket, norm_cc, norm_path, norm_service, norm_technique,
                                    norm_time, page_params)
from netvigil.report.read_http import CORS, ReadRoute, permalink_of, warm_charts
from netvigil.report.repository import ReadRepository
from netvigil.web.request import read_body, require_admin

router = APIRouter(prefix="/api/v1", route_class=ReadRoute, lifespan=warm_charts)


def reads_of(request: Request) -> ReadRepository:
    """The app's typed read repository (report/repository.py)."""
    return request.app.state.nv.reads


def builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)


def listing(request: Request, rows: list[dict], *, offset: int, limit: int, fmt: str,
            has_more: bool, name: str, total: int | None = None) -> Response:
    """One page of a list: JSON with metadata (`count` on this page, `total` matching the
    filters), or an export file (CSV, Parquet) whose next page, if any, is in the Link header."""
    next_url = page_url(request, offset=offset + limit, limit=limit) if has_more else None
    if fmt in ("csv", "parquet"):
        return export_file(rows, fmt, name, next_url)
    body = {"metadata": {"offset": offset, "limit": limit, "count": len(rows), "total": total,
                         "next_url": next_url}, "results": rows}
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


def timed(request: Request, name: str, t0: float) -> None:
    request.app.state.nv.metrics.api_seconds.labels(name).observe(time.perf_counter() - t0)


@router.options("/{rest:path}", include_in_schema=False)
async def preflight(rest: str):
    """CORS preflight for the read API (GET and HEAD from any origin; no credentials)."""
    return Response(status_code=204, headers=CORS)


@router.get("/status", tags=["api"], summary="Current status per country / network / service")
async def status(request: Request, country: str | None = None, asn: str | None = None,
                 service: str | None = None, format: str = "json", include: str | None = None):
    """Published cells: backed by the quorum of independent probes or a trusted one
    (`independent_probes`, `source_networks`; `measurements` counts measurements).
    `include=unconfirmed` adds the cells the quorum does not back, with `confirmed: false`."""
    t0 = time.perf_counter()
    fmt = check_format(format, parquet=True)
    apart = include_unconfirmed(include)
    args = dict(country=norm_cc(country), asn=norm_asn(asn), service=norm_service(service, known_services(request)))
    rows = await reads_of(request).status(**args)
    if apart:
        rows = list(rows) + reads_of(request).unconfirmed_status(**args)
    out = [builtins(r) for r in rows]
    timed(request, "status", t0)
    if fmt in ("csv", "parquet"):
        return export_file(out, fmt, "status")
    return Response(msgspec.json.encode({"results": out, "count": len(out)}), media_type="application/json")


@router.get("/verdicts", tags=["api"], summary="Verdicts (one per measurement and service), paged")
async def verdicts(request: Request, country: str | None = None, asn: str | None = None,
                   service: str | None = None, since: str | None = None, until: str | None = None,
                   path: str | None = None, limit: str | None = None, offset: str | None = None,
                   format: str = "json"):
    """`path`: direct (default), vpn, proxy or any: verdicts of a VPN path never mix into the
    direct ones unless asked. `limit` 1-10000 (default 100)."""
    t0 = time.perf_counter()
    fmt = check_format(format, parquet=True)
    lim, off = page_params(request, 100, 10000)
    q = {"country": norm_cc(country), "asn": norm_asn(asn), "service": norm_service(service, known_services(request)),
         "since": norm_time(since, "since"), "until": norm_time(until, "until"), "path": norm_path(path)}
    reads = reads_of(request)
    rows = await reads.verdicts(**q, limit=lim + 1, offset=off)
    total = None
    if fmt == "json":
        total = await reads.verdict_count(**q)
    out = [builtins(r) for r in rows[:lim]]
    timed(request, "verdicts", t0)
    return listing(request, out, offset=off, limit=lim, fmt=fmt, has_more=len(rows) > lim, name="verdicts",
                   total=total)


@router.get("/aggregates", tags=["api"], summary="Counts per (country, network, service, time bucket)")
async def aggregates(request: Request, country: str | None = None, asn: str | None = None,
                     service: str | None = None, since: str | None = None, until: str | None = None,
                     bucket: str = "1h", path: str | None = None, limit: str | None = None,
                     offset: str | None = None, format: str = "json"):
    """`path`: direct (default), vpn, proxy or any, as for verdicts. `limit` 1-100000 (default 10000)."""
    t0 = time.perf_counter()
    fmt = check_format(format, parquet=True)
    lim, off = page_params(request, 10000, 100000)
    bucket = norm_bucket(bucket)
    rows = await reads_of(request).aggregates(
        country=norm_cc(country), asn=norm_asn(asn), service=norm_service(service, known_services(request)),
        since=norm_time(since, "since"), until=norm_time(until, "until"), bucket=bucket, path=norm_path(path))
    page = [builtins(r) for r in rows[off:off + lim]]
    timed(request, "aggregates", t0)
    return listing(request, page, offset=off, limit=lim, fmt=fmt,
                   has_more=len(rows) > off + lim, name="aggregates", total=len(rows))


def include_unconfirmed(include: str | None) -> bool:
    """`include=unconfirmed`: also what the quorum does not back (analysis/incidents/quorum.py)."""
    if include in (None, ""):
        return False
    if include != "unconfirmed":
        raise Rejected(f"include={include[:40]!r}: the only value is 'unconfirmed'")
    return True


async def told_dict(reads: ReadRepository, inc, latest: str | None) -> dict:
    """The incident as published: measured rates in, with its dated statement."""
    from netvigil.report.text import incident_text

    inc, facts = await told(reads, inc, latest)
    d = builtins(inc)
    for n in d["networks"]:
        for span in n.get("techniques") or []:
            span.setdefault("rate_bps", None)  # one shape for every span (JSON, CSV and Parquet alike)
    d["text"] = incident_text(inc, facts)
    d["as_of"] = facts.as_of
    return d


async def told_rows(reads: ReadRepository, incidents) -> list[dict]:
    """Incidents as published (the API's list, `netvigil export incidents`): each told with
    the newest data of its country."""
    latest: dict[str, str | None] = {}
    rows = []
    for inc in incidents:
        if inc.country not in latest:
            latest[inc.country] = await latest_time(reads, inc.country)
        rows.append(await told_dict(reads, inc, latest[inc.country]))
    return rows


@router.get("/incidents", tags=["api"], summary="Incidents with networks, techniques and evidence")
async def incidents(request: Request, country: str | None = None, service: str | None = None,
                    asn: str | None = None, technique: str | None = None, since: str | None = None,
                    until: str | None = None, ongoing: str | None = None, limit: str | None = None,
                    offset: str | None = None, format: str = "json", include: str | None = None):
    """By start, oldest first. `technique` matches an id or its class (`tls`); `since`/`until`
    keep incidents overlapping that range; `asn` those touching the network. Only published
    incidents (backed by the quorum of independent probes or a trusted one: `evidence.
    independent_probes`, `evidence.source_networks`); `include=unconfirmed` adds the others,
    with `confirmed: false`."""
    fmt = check_format(format, parquet=True)
    apart = include_unconfirmed(include)
    lim, off = page_params(request, 1000, 10000)
    reads = reads_of(request)
    svc = norm_service(service, known_services(request) | {"*"})
    # every filter is the store's (analysis/reads.py IncidentFilters), the networks' too
    query = dict(country=norm_cc(country), service=svc, ongoing=bool_param(ongoing, "ongoing"), asn=norm_asn(asn),
                 technique=norm_technique(technique), since=norm_time(since, "since"), until=norm_time(until, "until"))
    if apart:  # two tables merged by (start, id): each read whole, then paged here
        rows = sorted([*await reads.incidents(**query), *await reads.incidents(**query, unconfirmed=True)],
                      key=lambda i: (i.start, i.id))
        total, rows = len(rows), rows[off:off + lim]
    else:  # one page read
        total = await reads.incident_count(**query)
        rows = await reads.incidents(**query, limit=lim, offset=off)
    page = await told_rows(reads, rows)
    return listing(request, page, offset=off, limit=lim, fmt=fmt,
                   has_more=total > off + lim, name="incidents", total=total)


async def incident_by_id(reads: ReadRepository, incident_id: str) -> Incident:
    """The incident of a permalink, unconfirmed ones included: a malformed id is a 400, an
    unknown one a 404 (the same for the incident and its chart)."""
    if not ID_RE.match(incident_id):
        raise Rejected(f"incident id {incident_id[:40]!r} is malformed")
    inc = await reads.incident(incident_id, unconfirmed=True)
    if inc is None:
        raise Rejected(f"incident {incident_id!r} not found", 404)
    return inc


@router.get("/incidents/{incident_id}", tags=["api"], summary="One incident with its text")
async def incident(request: Request, incident_id: str):
    """A permalink answers for an unconfirmed incident too, with `confirmed: false`; `quorum`
    is how many independent probes this observatory requires (analysis/incidents/quorum.py)."""
    reads = reads_of(request)
    inc = await incident_by_id(reads, incident_id)
    d = await told_dict(reads, inc, await latest_time(reads, inc.country))
    d["quorum"] = request.app.state.nv.settings.quorum
    return Response(msgspec.json.encode(d), media_type="application/json")


def permalink(request: Request, incident_id: str) -> str:
    return permalink_of(request.app.state.nv.settings, incident_id)


@router.get("/incidents/{incident_id}/chart.{ext}", tags=["api"], summary="Incident chart (svg or png)")
async def incident_chart(request: Request, incident_id: str, ext: str):
    """Drawn once per version of the data behind it, then served from a cache; embeddable
    (CORS, a credit line and the incident's permalink on the chart)."""
    from netvigil.report.chart import chart_for_incident

    if ext not in ("svg", "png"):
        raise Rejected(f"chart format {ext[:10]!r} is not supported (svg or png)", 404)
    reads = reads_of(request)
    inc = await incident_by_id(reads, incident_id)
    data = await chart_for_incident(reads, inc, ext, permalink(request, incident_id))
    return Response(data, media_type="image/svg+xml" if ext == "svg" else "image/png")


async def stored_measurement(request: Request, measurement_uid: str) -> bytes | None:
    nv = request.app.state.nv
    if not re.match(r"^[0-9A-Za-z._-]{1,120}$", measurement_uid):
        raise Rejected(f"measurement uid {measurement_uid[:40]!r} is malformed")
    raw = nv.collector.raw(measurement_uid)
    if raw is None and nv.pump.ready:
        found = await nv.reads.measurement(measurement_uid)
        raw = msgspec.json.encode(found) if found is not None else None
    return raw


@router.get("/measurement/{measurement_uid}", tags=["api"], summary="The stored measurement (raw JSON)")
async def measurement(request: Request, measurement_uid: str):
    raw = await stored_measurement(request, measurement_uid)
    if raw is None:
        raise Rejected(f"measurement {measurement_uid!r} not found", 404)
    return Response(raw, media_type="application/json")


def measurement_meta(uid: str, t: str, cc: str, asn: str, test_name: str, inp: str, report_id: str,
                     service: str | None, path: str | None) -> dict:
    return {"measurement_uid": uid, "measurement_start_time": t, "probe_cc": cc, "probe_asn": asn,
            "test_name": test_name, "input": inp, "report_id": report_id, "service": service, "path": path,
            "measurement_url": f"/api/v1/measurement/{uid}", "page_url": f"/measurement/{uid}"}


@router.get("/measurements", tags=["api"], summary="Measurement metadata, newest first, paged")
async def measurements(request: Request, probe_cc: str | None = None, probe_asn: str | None = None,
                       test_name: str | None = None, service: str | None = None,
                       since: str | None = None, until: str | None = None, path: str | None = None,
                       limit: str | None = None, offset: str | None = None, format: str = "json"):
    """From the collector's index, or from the store when the collector has not seen them
    (a store written by `netvigil demo` or `rebuild`). `path` here defaults to any."""
    fmt = check_format(format)
    lim, off = page_params(request, 100, 10000)
    cc, asn, svc = norm_cc(probe_cc), norm_asn(probe_asn), norm_service(service)
    lo, hi = norm_time(since, "since"), norm_time(until, "until")
    pth = norm_path(path) if path else "any"
    if test_name is not None and not re.match(r"^[a-z0-9_]{1,64}$", test_name):
        raise Rejected(f"query parameter 'test_name' is {test_name[:20]!r}, expected like web_connectivity")
    col = request.app.state.nv.collector
    if (not col.index or not col.complete) and request.app.state.nv.pump.ready:
        found = await reads_of(request).measurement_index(country=cc, asn=asn, service=svc, since=lo, until=hi,
                                                          test_name=test_name, path=pth, limit=lim, offset=off)
        out = [measurement_meta(r.uid, r.time, r.cc, r.asn, r.test_name, r.input, r.report_id, r.service or None,
                                r.path) for r in found.rows]
        return listing(request, out, offset=off, limit=lim, fmt=fmt, has_more=off + len(out) < found.total,
                       name="measurements", total=found.total)
    out: list[dict] = []
    total = 0
    for uid in reversed(col.order):
        m = col.index[uid]
        if ((cc and m.probe_cc != cc) or (asn and m.probe_asn != asn) or (test_name and m.test_name != test_name)
                or (svc and m.service != svc) or (lo and m.measurement_start_time < lo)
                or (hi and m.measurement_start_time >= hi) or (pth != "any" and (m.path or "direct") != pth)):
            continue
        total += 1
        if off < total <= off + lim:
            out.append(measurement_meta(m.measurement_uid, m.measurement_start_time, m.probe_cc, m.probe_asn,
                                        m.test_name, m.input, m.report_id, m.service, m.path))
    return listing(request, out, offset=off, limit=lim, fmt=fmt, has_more=total > off + lim, name="measurements",
                   total=total)


_STORED: "weakref.WeakKeyDictionary[Any, tuple[int, int]]" = weakref.WeakKeyDictionary()


async def stored_count(nv) -> int:
    """Measurements stored: the collector's index, or the store's table when the store was
    written directly (demo, rebuild); the count is kept per app and analysed total (it only
    moves then)."""
    if nv.collector.stored or not nv.pump.ready:
        return nv.collector.stored
    key = nv.pump.analysed
    hit = _STORED.get(nv)
    if hit is None or hit[0] != key:
        try:
            n = (await nv.reads.measurement_index(limit=0)).total
        except Exception:  # the store is busy or gone: say what the collector knows
            return nv.collector.stored
        hit = _STORED[nv] = (key, n)
    return hit[1]


@router.get("/summary", tags=["api"], summary="Counts of the whole store: measurements, countries, newest data")
async def summary(request: Request):
    """What the home page and /health say: measurements stored (collector or store) and the
    newest data time, with whether it is older than the probes' cadence."""
    from netvigil.report.enrich import freshness

    nv = request.app.state.nv
    stored = await stored_count(nv)
    as_of, stale = freshness(await latest_time(nv.reads)) if nv.pump.ready else (None, False)
    return {"measurements": stored, "as_of": as_of, "stale": stale}


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
    return {**nv.collector.stats, "stored": nv.collector.stored, "open_reports":
            sum(1 for r in nv.collector.reports.values() if r["open"]), "analysis": nv.pump.error or "running",
            "analysed": nv.pump.analysed, "alerts_sent": len(nv.alerter.sent)}
