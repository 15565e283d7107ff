"""Server-rendered live dashboard: countries, a status grid, timelines, incidents.

/                    countries with data and the ongoing incidents
/country/{cc}        grid services x networks, a timeline per service (onset marked), incidents
/incident/{id}       statement, chart, per-network techniques, circumvention, evidence
Pages are plain HTML from these functions (html.escape on every value) plus one small
script that re-fetches the page's <main> every few seconds, so it updates live without
a front-end framework.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from netvigil.collector.intake import Rejected
from netvigil.collector.pump import AnalysisUnavailable
from netvigil.model.records import Incident, StatusRow
from netvigil.report.dashboard_assets import CSS, JS
from netvigil.report.enrich import with_rates_from
from netvigil.report.text import country_name, incident_text, incident_title, service_name, technique_label
from netvigil.report.timeline import bucket_delta, timeline_svg

router = APIRouter(include_in_schema=False)

FMT = "%Y-%m-%d %H:%M:%S"
FAILING = ("dns", "tcp", "tls", "http", "quic", "throttled", "down", "outage")


def align(t: datetime, step: timedelta) -> datetime:
    """The end of the bucket holding t (buckets start at multiples of step since the epoch)."""
    epoch = datetime(1970, 1, 1)
    return epoch + ((t - epoch) // step + 1) * step


def page(title: str, body: str, *, refresh: int = 5) -> HTMLResponse:
    html = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body data-refresh='{refresh}'><header><a href='/'>netvigil</a> <span class=sub>observatory of "
            f"internet censorship and outages</span><span id=live class=live>live</span></header>"
            f"<main id=main>{body}</main><script>{JS}</script></body></html>")
    return HTMLResponse(html)


def fragment_or_page(request: Request, title: str, body: str) -> Response:
    if request.query_params.get("fragment"):
        return HTMLResponse(body)
    return page(title, body)


def unavailable(exc: Exception) -> str:
    return (f"<p class=banner>Analysis is not available yet ({escape(str(exc))}). Measurements are still "
            "being collected; this page refreshes by itself.</p>")


def cell_class(row: StatusRow) -> str:
    return row.klass if row.klass in FAILING or row.klass in ("ok", "unknown") else "unknown"


def net_label(asn: str, name: str | None) -> str:
    return f"{escape(name)}<br><small>{escape(asn)}</small>" if name else escape(asn)


def status_grid(rows: list[StatusRow], cc: str) -> str:
    nets: dict[str, str | None] = {}
    services: list[str] = []
    cells: dict[tuple[str, str], StatusRow] = {}
    for r in rows:
        nets.setdefault(r.asn, r.network_name)
        if r.service not in services:
            services.append(r.service)
        cells[(r.service, r.asn)] = r
    services.sort(key=lambda s: (s == "control", s))
    head = "".join(f"<th scope=col>{net_label(a, n)}</th>" for a, n in sorted(nets.items()))
    body = []
    for svc in services:
        tds = []
        for asn in sorted(nets):
            r = cells.get((svc, asn))
            if r is None:
                tds.append("<td class='cell none'>&ndash;</td>")
                continue
            label = technique_label(r.technique) or r.klass
            tip = f"{r.klass} {r.technique or ''} since {r.since or '?'}; last {r.last_measurement or '?'}"
            inner = escape(label)
            if r.incident_id:
                inner = f"<a href='/incident/{escape(r.incident_id)}'>{inner}</a>"
            tds.append(f"<td class='cell {cell_class(r)}' title='{escape(tip)}' data-service='{escape(svc)}' "
                       f"data-asn='{escape(asn)}' data-class='{escape(r.klass)}'>{inner}</td>")
        body.append(f"<tr><th scope=row>{escape(service_name(svc))}</th>{''.join(tds)}</tr>")
    return (f"<table class=grid id=grid data-country='{escape(cc)}'><thead><tr><th>service \\ network</th>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>")


def incident_list(incidents: list[Incident]) -> str:
    if not incidents:
        return "<p class=muted>No incidents.</p>"
    items = []
    for inc in sorted(incidents, key=lambda i: i.start, reverse=True):
        state = "ongoing" if inc.end is None else f"ended {escape(inc.end)}"
        items.append(f"<li class='incident {escape(inc.kind)}'><a href='/incident/{escape(inc.id)}'>"
                     f"{escape(incident_title(inc))}</a> <span class=state>{state}</span>"
                     f"<p>{escape(incident_text(inc))}</p></li>")
    return f"<ul class=incidents id=incidents>{''.join(items)}</ul>"


@router.get("/", response_class=HTMLResponse)
async def index(request: Request):
    nv = request.app.state.nv
    try:
        rows = await nv.pump.call("status")
        incidents = await nv.pump.call("incidents", ongoing=None)
    except AnalysisUnavailable as exc:
        body = unavailable(exc) + f"<p>{len(nv.collector.index)} measurements collected.</p>"
        return fragment_or_page(request, "netvigil", body)
    by_cc: dict[str, list[StatusRow]] = {}
    for r in rows:
        by_cc.setdefault(r.country, []).append(r)
    cards = []
    for cc, rs in sorted(by_cc.items()):
        bad = sum(1 for r in rs if r.klass in FAILING)
        nets = len({r.asn for r in rs})
        cards.append(f"<li class=country><a href='/country/{escape(cc)}'>{escape(country_name(cc))} "
                     f"({escape(cc)})</a> <span class={'bad' if bad else 'good'}>{bad} restricted of "
                     f"{len(rs)}</span> <small>{nets} networks</small></li>")
    ongoing = [i for i in incidents if i.end is None]
    body = (f"<h1>Countries</h1><ul class=countries id=countries>{''.join(cards) or '<li>No data yet.</li>'}</ul>"
            f"<h2>Ongoing incidents</h2>{incident_list(ongoing)}"
            f"<p class=muted>{len(nv.collector.index)} measurements collected, {nv.pump.analysed} analysed "
            f"since start.</p>")
    return fragment_or_page(request, "netvigil observatory", body)


@router.get("/country/{cc}", response_class=HTMLResponse)
async def country(request: Request, cc: str, hours: int = 24):
    if len(cc) != 2 or not cc.isalpha():
        raise Rejected(f"country code {cc[:10]!r} is not two letters like RU", 404)
    if not 1 <= hours <= 24 * 60:
        raise Rejected("query parameter 'hours' must be between 1 and 1440")
    cc = cc.upper()
    nv = request.app.state.nv
    title = f"{country_name(cc)} ({cc})"
    try:
        rows = await nv.pump.call("status", country=cc)
        incidents = await nv.pump.call("incidents", country=cc)
        latest = max((r.last_measurement for r in rows if r.last_measurement), default=None)
        timelines = ""
        if latest:
            bucket = "10m" if hours <= 6 else ("30m" if hours <= 24 else "1h")
            until = align(datetime.strptime(latest[:19], FMT), bucket_delta(bucket))
            since = until - timedelta(hours=hours)
            try:
                aggs = await nv.pump.call("aggregates", country=cc, since=since.strftime(FMT),
                                          until=until.strftime(FMT), bucket=bucket)
            except AnalysisUnavailable:
                raise
            except Exception:
                bucket = "1h"
                aggs = await nv.pump.call("aggregates", country=cc, since=since.strftime(FMT),
                                          until=until.strftime(FMT), bucket=bucket)
            first = min((datetime.strptime(a.bucket[:19], FMT) for a in aggs), default=since)
            since = max(since, first - bucket_delta(bucket))  # do not draw hours without data
            services = sorted({r.service for r in rows}, key=lambda s: (s == "control", s))
            timelines = "".join(
                timeline_svg(svc, [a for a in aggs if a.service == svc],
                             [i for i in incidents if i.service == svc or i.kind == "outage"],
                             since, until, bucket, {r.asn: r.network_name for r in rows})
                for svc in services)
    except AnalysisUnavailable as exc:
        return fragment_or_page(request, title, f"<h1>{escape(title)}</h1>" + unavailable(exc))
    body = (f"<h1>{escape(title)}</h1><p class=muted>Latest measurement {escape(latest or 'none')} UTC "
            f"(scenario clock).</p><h2>Status by service and network</h2>{status_grid(rows, cc)}"
            f"<h2>Incidents</h2>{incident_list(incidents)}"
            f"<h2>Timelines (last {hours} h)</h2><div id=timelines>{timelines}</div>")
    return fragment_or_page(request, title, body)


def network_table(inc: Incident) -> str:
    rows = []
    for n in inc.networks:
        changes = " &rarr; ".join(
            f"<span title='{escape(technique_label(t.get('technique')))}'>{escape(str(t.get('technique')))}</span> "
            f"{'<small>~' + format(t['rate_bps'] / 1000, '.0f') + ' kbit/s</small> ' if t.get('rate_bps') else ''}"
            f"<small>({escape(str(t.get('start', ''))[11:16])}"
            f"{'&ndash;' + escape(str(t.get('end'))[11:16]) if t.get('end') else ''})</small>"
            for t in (n.techniques or []))
        now = (n.techniques[-1].get("technique") if n.techniques else None) or n.technique or ""
        rows.append(f"<tr><td>{escape(n.network_name or '')}</td><td>{escape(n.asn)}</td>"
                    f"<td class=tech>{escape(str(now))}</td><td>{escape(n.start)}</td>"
                    f"<td>{escape(n.end or 'ongoing')}</td><td>{changes}</td></tr>")
    return ("<table class=networks id=networks><thead><tr><th>provider</th><th>ASN</th><th>technique (latest)</th>"
            "<th>start</th><th>end</th><th>how it changed</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def evidence_block(inc: Incident) -> str:
    ev = inc.evidence
    if ev is None:
        return "<p class=muted>No evidence bundle.</p>"
    links = "".join(f"<li><a href='/api/v1/measurement/{escape(u)}'>{escape(u)}</a></li>"
                    for u in ev.measurement_uids[:50])
    return (f"<div id=evidence><p>{ev.measurement_count or len(ev.measurement_uids)} measurements from "
            f"{ev.probe_count} probe(s); rules version <code>{escape(ev.rules_version)}</code>.</p>"
            f"<ul class=uids>{links}</ul></div>")


CIRCUMVENTION = {"works": "Circumvention works: the service is reachable through a VPN on the same networks.",
                 "blocked": "Circumvention fails: VPN connections are blocked too.",
                 "unknown": "Circumvention: not measured in this window."}


@router.get("/incident/{incident_id}", response_class=HTMLResponse)
async def incident_page(request: Request, incident_id: str):
    nv = request.app.state.nv
    try:
        inc = await nv.pump.call("incident", id=incident_id)
    except AnalysisUnavailable as exc:
        return fragment_or_page(request, "incident", unavailable(exc))
    if inc is None:
        raise Rejected(f"incident {incident_id[:80]!r} not found", 404)
    inc = await with_rates_from(nv.pump, inc)
    call = ("an outage (the network itself fails, control targets too)" if inc.kind == "outage"
            else "censorship (service-specific failures while control targets work)")
    body = (f"<p><a href='/country/{escape(inc.country)}'>&larr; {escape(country_name(inc.country))}</a></p>"
            f"<h1>{escape(incident_title(inc))}</h1><blockquote id=statement>{escape(incident_text(inc))}"
            f"</blockquote><img id=chart alt='chart of failing measurements per provider' "
            f"src='/api/v1/incidents/{escape(inc.id)}/chart.svg'>"
            f"<dl class=facts><dt>call</dt><dd id=kind>{escape(call)}</dd><dt>start</dt><dd>{escape(inc.start)} UTC"
            f"</dd><dt>end</dt><dd>{escape(inc.end or 'ongoing')}</dd><dt>circumvention</dt>"
            f"<dd id=circumvention class={escape(inc.circumvention)}>{escape(CIRCUMVENTION.get(inc.circumvention, inc.circumvention))}"
            f"</dd></dl><h2>Networks and techniques</h2>{network_table(inc)}<h2>Evidence</h2>{evidence_block(inc)}"
            f"<p><a href='/api/v1/incidents/{escape(inc.id)}'>JSON</a> &middot; "
            f"<a href='/api/v1/incidents/{escape(inc.id)}/chart.png'>chart PNG</a></p>")
    return fragment_or_page(request, incident_title(inc), body)
