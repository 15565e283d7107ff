"""The read API (/api/v1/...): status, verdicts, aggregates, incidents, measurements, exports.

Shapes follow OONI's API where one exists (`/api/v1/measurement/{uid}` returns the stored
measurement; lists answer {"metadata": {offset, limit, count, next_url}, "results": [...]}).
Every list takes `format=json|csv` for export (CSV cells holding lists/objects are JSON);
status, verdicts, aggregates and incidents also `format=parquet` (typed columns: report/export.py).
Query parameters are checked here, not by FastAPI (whose 422 the docs do not promise): a bad
country, ASN, service (named against the known ones), path, time, bucket, format, limit or
offset is a 400 naming it. Every GET answers HEAD too, carries CORS (the read API is public
and embeddable), Cache-Control and an ETag (If-None-Match gives a 304).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from netvigil.collector.intake import Rejected
from netvigil.collector.routes import read_body, require_admin
from netvigil.report.enrich import latest_time, told
from netvigil.report.export import PARQUET_MEDIA_TYPE, to_csv, to_parquet

CORS = {"access-control-allow-origin": "*", "access-control-allow-methods": "GET, HEAD, OPTIONS",
        "access-control-allow-headers": "Content-Type, If-None-Match", "access-control-max-age": "86400",
        "access-control-expose-headers": "ETag, Link"}
MAX_AGE = 5  # seconds: the dashboard refreshes every 5 s; an ETag makes the re-check cheap


def cache_headers(request: Request, response: Response, max_age: int = MAX_AGE) -> Response:
    """ETag (a hash of the body), Cache-Control and CORS on a 200; a 304 when the client's
    If-None-Match already names this body."""
    if response.status_code != 200 or not hasattr(response, "body"):
        return response
    if "etag" not in response.headers:
        response.headers["etag"] = '"' + hashlib.blake2b(response.body, digest_size=12).hexdigest() + '"'
    response.headers.setdefault("cache-control", f"public, max-age={max_age}")
    etag = response.headers["etag"]
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"etag": etag, "cache-control": response.headers["cache-control"],
                                                  **CORS})
    return response


class ReadRoute(APIRoute):
    """A read route: answers HEAD like GET, with CORS, ETag and Cache-Control."""

    @staticmethod
    def _as_get(scope):
        return {**scope, "method": "GET"} if scope.get("type") == "http" and scope.get("method") == "HEAD" else scope

    def matches(self, scope):  # HEAD is GET here: one operation in the OpenAPI schema, not two
        return super().matches(self._as_get(scope) if "GET" in self.methods else scope)

    async def handle(self, scope, receive, send):  # the server drops the body of a HEAD answer
        await super().handle(self._as_get(scope) if "GET" in self.methods else scope, receive, send)

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        cors = not self.path.startswith("/api/v1/admin")

        async def wrapped(request: Request) -> Response:
            response = await handler(request)
            if request.method in ("GET", "HEAD") and cors:
                response.headers.update(CORS)
                response = cache_headers(request, response)
            return response

        return wrapped


PRERENDER_EVERY = 10.0  # seconds between passes at most: bounded background work while data streams in
PRERENDER_LATEST = 20  # incidents (the most recent) whose charts are drawn ahead


async def prerender(app) -> None:
    """Draw the charts of the latest incidents when the data behind them has moved, so the
    first reader of an incident page gets its chart from the cache, not a 0.3-0.6 s draw."""
    from netvigil.report.chart import chart_for_incident

    nv = app.state.nv
    seen = None
    while True:
        await asyncio.sleep(0.5 if seen is None else PRERENDER_EVERY)
        if nv.pump.obs is None or nv.pump.analysed == seen:
            continue
        seen = nv.pump.analysed
        try:
            incs = await nv.pump.call("incidents")
            for inc in sorted(incs, key=lambda i: i.start)[-PRERENDER_LATEST:]:
                await chart_for_incident(nv.pump, inc, "svg", permalink_of(nv.settings, inc.id))
        except asyncio.CancelledError:
            raise
        except Exception:  # a reader's request will draw it (and say what is wrong)
            continue


@contextlib.asynccontextmanager
async def warm_charts(app):
    """The chart renderer starts in the background with the app, not on a reader's request;
    then the latest incidents' charts are drawn ahead."""
    from netvigil.report.chart import warm_up

    threading.Thread(target=warm_up, name="netvigil-chart-warm-up", daemon=True).start()
    task = asyncio.get_running_loop().create_task(prerender(app))
    try:
        yield
    finally:
        task.cancel()


router = APIRouter(prefix="/api/v1", route_class=ReadRoute, lifespan=warm_charts)

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


def check_format(fmt: str, parquet: bool = False) -> str:
    """json and csv everywhere; parquet for the lists with a typed record (export.KINDS)."""
    allowed = ("json", "csv", "parquet") if parquet else ("json", "csv")
    if fmt not in allowed:
        raise Rejected(f"query parameter 'format' is {fmt[:20]!r}, expected {', '.join(allowed[:-1])} or {allowed[-1]}")
    return fmt


def timed(request: Request, name: str, t0: float) -> None:
    request.app.state.nv.metrics.api_seconds.labels(name).observe(time.perf_counter() - t0)


@router.options("/{rest:path}", include_in_schema=False)
async def preflight(rest: str):
    """CORS preflight for the read API (GET and HEAD from any origin; no credentials)."""
    return Response(status_code=204, headers=CORS)


def page_params(request: Request, default: int, hi: int) -> tuple[int, int]:
    q = request.query_params
    return (int_param(q.get("limit"), "limit", default, 1, hi), int_param(q.get("offset"), "offset", 0, 0, 10**9))


@router.get("/status", tags=["api"], summary="Current status per country / network / service")
async def status(request: Request, country: str | None = None, asn: str | None = None,
                 service: str | None = None, format: str = "json"):
    t0 = time.perf_counter()
    pump = request.app.state.nv.pump
    fmt = check_format(format, parquet=True)
    args = {"country": norm_cc(country), "asn": norm_asn(asn),
            "service": norm_service(service, known_services(request))}
    rows = pump.status(**args)  # the read model the analysis pump keeps current
    if rows is None:
        rows = await pump.call("status", **args)
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
    rows = await request.app.state.nv.pump.call("verdicts", **q, limit=lim + 1, offset=off)
    total = None
    if fmt == "json":
        total = await request.app.state.nv.pump.call("verdict_count", **q)
    out = [builtins(r) for r in rows[:lim]]
    timed(request, "verdicts", t0)
    return listing(request, out, offset=off, limit=lim, fmt=fmt, has_more=len(rows) > lim, name="verdicts",
                   total=total)


@router.get("/aggregates", tags=["api"], summary="Counts per (country, network, service, time bucket)")
async def aggregates(request: Request, country: str | None = None, asn: str | None = None,
                     service: str | None = None, since: str | None = None, until: str | None = None,
                     bucket: str = "1h", limit: str | None = None, offset: str | None = None, format: str = "json"):
    """Direct-path measurements only. `limit` 1-100000 (default 10000)."""
    t0 = time.perf_counter()
    fmt = check_format(format, parquet=True)
    lim, off = page_params(request, 10000, 100000)
    if not BUCKET_RE.match(bucket) or int(bucket[:-1]) == 0:
        raise Rejected(f"query parameter 'bucket' is {bucket[:20]!r}, expected like 10m, 1h or 1d")
    rows = await request.app.state.nv.pump.call(
        "aggregates", country=norm_cc(country), asn=norm_asn(asn), service=norm_service(service, known_services(request)),
        since=norm_time(since, "since"), until=norm_time(until, "until"), bucket=bucket)
    page = [builtins(r) for r in rows[off:off + lim]]
    timed(request, "aggregates", t0)
    return listing(request, page, offset=off, limit=lim, fmt=fmt,
                   has_more=len(rows) > off + lim, name="aggregates", total=len(rows))


def incident_filter(incs: list, asn: str | None, technique: str | None, since: str | None,
                    until: str | None) -> list:
    """Incidents touching a network, using a technique, or overlapping [since, until)."""
    out = []
    for i in incs:
        if asn and asn not in {n.asn for n in i.networks}:
            continue
        if technique and not any(t == technique or t.startswith(technique + ".")
                                 for t in [*i.techniques, *(n.technique or "" for n in i.networks)]):
            continue
        if until and i.start >= until:
            continue
        if since and i.end is not None and i.end < since:
            continue
        out.append(i)
    return out


TECHNIQUE_RE = re.compile(r"^[a-z_]{1,20}(\.[a-z_]{1,40})?$")


def norm_technique(technique: str | None) -> str | None:
    if technique is None or technique == "":
        return None
    if not TECHNIQUE_RE.match(technique):
        raise Rejected(f"query parameter 'technique' is {technique[:30]!r}, expected like tls or tls.reset_after_hello")
    return technique


async def told_dict(pump, inc, latest: str | None) -> dict:
    """The incident as published: measured rates in, with its dated statement."""
    from netvigil.report.text import incident_text

    inc, facts = await told(pump, inc, latest)
    d = builtins(inc)
    d["text"] = incident_text(inc, facts)
    d["as_of"] = facts.as_of
    return d


@router.get("/incidents", tags=["api"], summary="Incidents with networks, techniques and evidence")
async def incidents(request: Request, country: str | None = None, service: str | None = None,
                    asn: str | None = None, technique: str | None = None, since: str | None = None,
                    until: str | None = None, ongoing: str | None = None, limit: str | None = None,
                    offset: str | None = None, format: str = "json"):
    """By start, oldest first. `technique` matches an id or its class (`tls`); `since`/`until`
    keep incidents overlapping that range; `asn` those touching the network."""
    fmt = check_format(format, parquet=True)
    lim, off = page_params(request, 1000, 10000)
    pump = request.app.state.nv.pump
    svc = norm_service(service, known_services(request) | {"*"})
    rows = await pump.call("incidents", country=norm_cc(country), service=svc, ongoing=bool_param(ongoing, "ongoing"))
    rows = incident_filter(rows, norm_asn(asn), norm_technique(technique), norm_time(since, "since"),
                           norm_time(until, "until"))
    latest: dict[str, str | None] = {}
    page = []
    for inc in rows[off:off + lim]:
        if inc.country not in latest:
            latest[inc.country] = await latest_time(pump, inc.country)
        page.append(await told_dict(pump, inc, latest[inc.country]))
    return listing(request, page, offset=off, limit=lim, fmt=fmt,
                   has_more=len(rows) > off + lim, name="incidents", total=len(rows))


ID_RE = re.compile(r"^[0-9A-Za-z._:-]{1,200}$")


@router.get("/incidents/{incident_id}", tags=["api"], summary="One incident with its text")
async def incident(request: Request, incident_id: str):
    if not ID_RE.match(incident_id):
        raise Rejected(f"incident id {incident_id[:40]!r} is malformed")
    pump = request.app.state.nv.pump
    inc = await pump.call("incident", id=incident_id)
    if inc is None:
        raise Rejected(f"incident {incident_id!r} not found", 404)
    d = await told_dict(pump, inc, await latest_time(pump, inc.country))
    return Response(msgspec.json.encode(d), media_type="application/json")


def permalink_of(settings, incident_id: str) -> str:
    return f"{(settings.public_url or '').rstrip('/')}/incident/{incident_id}"


def permalink(request: Request, incident_id: str) -> str:
    return permalink_of(request.app.state.nv.settings, incident_id)


@router.get("/incidents/{incident_id}/chart.{ext}", tags=["api"], summary="Incident chart (svg or png)")
async def incident_chart(request: Request, incident_id: str, ext: str):
    """Drawn once per version of the data behind it, then served from a cache; embeddable
    (CORS, a credit line and the incident's permalink on the chart)."""
    from netvigil.report.chart import chart_for_incident

    if ext not in ("svg", "png"):
        raise Rejected(f"chart format {ext[:10]!r} is not supported (svg or png)", 404)
    if not ID_RE.match(incident_id):
        raise Rejected(f"incident id {incident_id[:40]!r} is malformed")
    inc = await request.app.state.nv.pump.call("incident", id=incident_id)
    if inc is None:
        raise Rejected(f"incident {incident_id!r} not found", 404)
    data = await chart_for_incident(request.app.state.nv.pump, inc, ext, permalink(request, incident_id))
    return Response(data, media_type="image/svg+xml" if ext == "svg" else "image/png")


async def stored_measurement(request: Request, measurement_uid: str) -> bytes | None:
    nv = request.app.state.nv
    if not re.match(r"^[0-9A-Za-z._-]{1,120}$", measurement_uid):
        raise Rejected(f"measurement uid {measurement_uid[:40]!r} is malformed")
    raw = nv.collector.raw(measurement_uid)
    if raw is None and nv.pump.obs is not None:
        found = await nv.pump.call("measurement", uid=measurement_uid)
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
    pump = request.app.state.nv.pump
    if not col.index and pump.obs is not None:
        total, rows = await pump.call("measurement_index", country=cc, asn=asn, service=svc, since=lo, until=hi,
                                      test_name=test_name, path=pth, limit=lim, offset=off)
        out = [measurement_meta(r["uid"], r["time"], r["cc"], r["asn"], r["test_name"], r["input"], r["report_id"],
                                r["service"] or None, r["path"]) for r in rows]
        return listing(request, out, offset=off, limit=lim, fmt=fmt, has_more=off + len(out) < total,
                       name="measurements", total=total)
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


_STORED: dict[int, int] = {}


async def stored_count(nv) -> int:
    """Measurements stored: the collector's index, or the store's table when the store was
    written directly (demo, rebuild); the count is kept per analysed total (it only moves then)."""
    if nv.collector.index or nv.pump.obs is None:
        return len(nv.collector.index)
    key = nv.pump.analysed
    if key not in _STORED:
        try:
            n, _ = await nv.pump.call("measurement_index", limit=0)
        except Exception:  # the store is busy or gone: say what the collector knows
            return len(nv.collector.index)
        _STORED.clear()
        _STORED[key] = n
    return _STORED[key]


@router.get("/summary", tags=["api"], summary="Counts of the whole store: measurements, countries, newest data")
async def summary(request: Request):
    """What the home page and /health say: measurements stored (collector or store) and the
    newest data time, with whether it is older than the probes' cadence."""
    from netvigil.report.enrich import freshness

    nv = request.app.state.nv
    stored = await stored_count(nv)
    as_of, stale = freshness(await latest_time(nv.pump)) if nv.pump.obs is not None else (None, False)
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
    return {**nv.collector.stats, "stored": len(nv.collector.index), "open_reports":
            sum(1 for r in nv.collector.reports.values() if r["open"]), "analysis": nv.pump.error or "running",
            "analysed": nv.pump.analysed, "alerts_sent": len(nv.alerter.sent)}
