"""Server-rendered live dashboard: countries, a status grid, timelines, incidents, evidence.

/                    countries with data and the ongoing incidents
/country/{cc}        grid services x networks, a timeline per service, incidents; filters
/network/{asn}       every service on one network over time
/service/{name}      every network measuring one service
/incident/{id}       dated statement, chart (embeddable), per-network techniques, evidence
/measurement/{uid}   one measurement: verdict, rule ids, each step with timing and failure
Filters (`asn`, `service`, `technique`, `path`, `since`, `until`; `hours` = the window when no
range is given) are query parameters, as in the API. Components are in dashboard_parts.py;
the document, freshness and errors in pages.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from urllib.parse import urlencode

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from netvigil.errors import AnalysisUnavailable, Rejected
from netvigil.model import times
from netvigil.model.vocabulary import Circumvention, IncidentKind
from netvigil.report import api
from netvigil.report.dashboard_parts import (FAILING, evidence_block, filter_form, incident_list, network_table,
                                             quic_cells, status_grid, timelines, unavailable, unconfirmed_block,
                                             unconfirmed_notice)
from netvigil.report.enrich import freshness, latest_time, newest, told
from netvigil.report.measurement_view import steps_html
from netvigil.report.pages import document, error_page, fragment_or_page
from netvigil.report.sources import ABOUT, about_body
from netvigil.report.text import (country_name, incident_text, incident_title, is_vantage, place_label, plural,
                                  service_name, technique_label, when)

router = APIRouter(include_in_schema=False)

FMT = times.FORMAT
HOME_INCIDENTS = 50  # the newest ongoing incidents on the home page
INCIDENTS_PAGE = 50  # incidents per page of /incidents


def read_route(path: str):
    """GET and HEAD on a page (a link checker or a proxy asks HEAD)."""
    return router.api_route(path, methods=["GET", "HEAD"], response_class=HTMLResponse)


def bad_request(request: Request, exc: Rejected) -> Response:
    return error_page(request, exc.status, str(exc))


def page_links(request: Request, offset: int, total: int, size: int) -> str:
    """Newer/older links of a paged list (nothing when it fits on one page)."""
    if total <= size and offset == 0:
        return ""
    links = []
    if offset > 0:
        links.append(f"<a rel=prev href='{escape(page_href(request, max(0, offset - size)))}'>newer</a>")
    if offset + size < total:
        links.append(f"<a rel=next href='{escape(page_href(request, offset + size))}'>older</a>")
    shown = f"{min(offset + 1, total)}&ndash;{min(offset + size, total)} of {total}"
    return f"<nav class=pages aria-label=pages id=pages>{shown} {' '.join(links)}</nav>"


def page_href(request: Request, offset: int) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "fragment")]
    return request.url.path + "?" + urlencode([*params, ("offset", str(offset))])


@read_route("/")
async def index(request: Request):
    nv = request.app.state.nv
    try:
        rows = await nv.reads.status()
        # the newest ongoing incidents only: the page is fetched again every 5 s
        incidents = await nv.reads.incidents(ongoing=True, newest_first=True, limit=HOME_INCIDENTS + 1)
        unconfirmed = await nv.reads.incidents(ongoing=True, newest_first=True, limit=HOME_INCIDENTS, unconfirmed=True)
        stored = await api.stored_count(nv)
    except AnalysisUnavailable as exc:
        body = unavailable(exc) + f"<p>{plural(nv.collector.stored, 'measurement')} collected.</p>"
        return fragment_or_page(request, "netvigil", body)
    as_of, stale = freshness(newest(rows))
    by_cc: dict[str, list] = {}
    for r in rows:
        by_cc.setdefault(r.country, []).append(r)
    cards = []
    for cc, rs in sorted(by_cc.items(), key=lambda kv: (is_vantage(kv[0]), kv[0])):
        bad = sum(1 for r in rs if r.klass in FAILING)
        nets = len({r.asn for r in rs})
        cards.append(f"<li class=country data-key='cc-{escape(cc)}'><a href='/country/{escape(cc)}'>"
                     f"{escape(place_label(cc))}</a> <span class={'bad' if bad else 'good'}>{bad} of {len(rs)} "
                     f"service-network pairs restricted</span> <small>{plural(nets, 'network')}</small></li>")
    more = ""
    if len(incidents) > HOME_INCIDENTS:
        incidents = incidents[:HOME_INCIDENTS]
        more = (f"<p class=muted id=more>The {HOME_INCIDENTS} newest are shown; "
                f"<a href='/incidents?ongoing=1'>every ongoing incident</a>.</p>")
    told_incs = [await told(nv.reads, i, as_of or "") for i in incidents]
    body = (f"<h1>Countries</h1><ul class=countries id=countries>{''.join(cards) or '<li>No data yet.</li>'}</ul>"
            f"<h2>{'Incidents ongoing in the latest data' if stale else 'Ongoing incidents'}</h2>"
            f"{incident_list(told_incs, stale)}{more}"
            f"{unconfirmed_block(unconfirmed[:HOME_INCIDENTS], len(nv.reads.unconfirmed_status()))}"
            f"<p class=muted id=totals>{plural(stored, 'measurement')} stored"
            f"{', newest from ' + escape(when(as_of)) if as_of else ''}.</p>")
    return fragment_or_page(request, "netvigil observatory", body, as_of=as_of, stale=stale)


@read_route(ABOUT)
async def about():
    """The third-party data shipped with its licences and credits (report/sources.py), the page
    every footer links to."""
    return document("Data sources and licences - netvigil", about_body(), refresh=0)


@read_route("/incidents")
async def incidents_page(request: Request):
    """Incidents, filtered (country, asn, service, technique, since, until, ongoing), newest
    first, one page of INCIDENTS_PAGE at a time (`offset`): only that page is read and told."""
    nv = request.app.state.nv
    q = request.query_params
    try:
        cc, asn = api.norm_cc(q.get("country")), api.norm_asn(q.get("asn"))
        svc = api.norm_service(q.get("service"), api.known_services(request) | {"*"})
        tech, lo, hi = api.norm_technique(q.get("technique")), api.norm_time(q.get("since"), "since"), \
            api.norm_time(q.get("until"), "until")
        ongoing = api.bool_param(q.get("ongoing"), "ongoing")
        off = api.int_param(q.get("offset"), "offset", 0, 0, 10**9)
    except Rejected as exc:
        return bad_request(request, exc)
    # every filter, the networks' and techniques' too, is the store's: one page is read
    where = {"country": cc, "service": svc, "ongoing": ongoing, "since": lo, "until": hi, "asn": asn, "technique": tech}
    try:
        total = await nv.reads.incident_count(**where)
        incs = await nv.reads.incidents(**where, newest_first=True, limit=INCIDENTS_PAGE, offset=off)
        as_of, stale = freshness(await latest_time(nv.reads))
    except AnalysisUnavailable as exc:
        return fragment_or_page(request, "incidents", unavailable(exc))
    told_incs = [await told(nv.reads, i, as_of or "") for i in incs]
    body = (f"<h1>Incidents</h1>{filter_form(request, ['country', 'asn', 'service', 'technique', 'since', 'until'])}"
            f"<p class=muted>{plural(total, 'incident')} match.</p>{incident_list(told_incs, stale)}"
            f"{page_links(request, off, total, INCIDENTS_PAGE)}")
    return fragment_or_page(request, "incidents", body, as_of=as_of, stale=stale)


def path_words(path: str) -> str:
    """What the timelines show when not the direct path (the status grid is always direct)."""
    return {"direct": "", "vpn": ", through a VPN", "proxy": ", through a proxy", "any": ", every path"}[path]


def hour_before(latest: str | None) -> str | None:
    """An hour before the newest measurement: the verdicts a page's QUIC marks are read from."""
    return times.shift(latest, -3600) if latest else None


def window_of(request: Request, latest: str | None) -> tuple[datetime, datetime, str, int]:
    """(since, until, bucket, hours) of the timelines: `since`/`until` if given, else the last
    `hours` (1-1440, default 24) before the newest data."""
    q = request.query_params
    hours = api.int_param(q.get("hours"), "hours", 24, 1, 24 * 60)
    lo, hi = api.norm_time(q.get("since"), "since"), api.norm_time(q.get("until"), "until")
    until = times.naive(hi) if hi else (times.naive(latest) if latest else datetime(1970, 1, 2))
    since = times.naive(lo) if lo else until - timedelta(hours=hours)
    if since >= until:
        raise Rejected("query parameter 'since' must be before 'until'")
    hours = max(1, int((until - since).total_seconds() // 3600))
    bucket = "10m" if hours <= 6 else ("30m" if hours <= 24 else ("1h" if hours <= 24 * 7 else "1d"))
    from netvigil.report.timeline import bucket_delta

    step = bucket_delta(bucket)
    epoch = datetime(1970, 1, 1)
    until = epoch + -((epoch - until) // step) * step  # the end of the bucket holding it
    return since, until, bucket, hours


def trimmed(request: Request, since: datetime, aggs: list, bucket: str) -> datetime:
    """Without an explicit `since`, no empty hours are drawn before the first data."""
    from netvigil.report.timeline import bucket_delta

    if request.query_params.get("since") or not aggs:
        return since
    first = min(times.naive(a.bucket) for a in aggs)
    return max(since, first - bucket_delta(bucket))


@read_route("/country/{cc}")
async def country(request: Request, cc: str):
    if len(cc) != 2 or not cc.isalpha():
        return error_page(request, 404, f"{cc[:10]!r} is not a country code; use two letters like RU.")
    cc = cc.upper()
    nv = request.app.state.nv
    q = request.query_params
    try:
        asn = api.norm_asn(q.get("asn"))
        svc = api.norm_service(q.get("service"), api.known_services(request))
    except Rejected as exc:
        return bad_request(request, exc)
    title = place_label(cc)
    try:
        rows = await nv.reads.status(country=cc)
        if not rows and not await nv.reads.incidents(country=cc, limit=1):
            return error_page(request, 404, f"No measurements from {country_name(cc)} ({cc}).",
                              "The countries with data are listed on the home page.")
        latest = newest(rows)
        since, until, bucket, hours = window_of(request, latest)
        path = api.norm_path(q.get("path"))
        aggs = await nv.reads.aggregates(country=cc, asn=asn, service=svc, since=since.strftime(FMT),
                                         until=until.strftime(FMT), bucket=bucket, path=path)
        since = trimmed(request, since, aggs, bucket)
        # only the incidents overlapping the window drawn (this page refreshes every 5 s), of
        # the network and technique asked for (filtered in the store)
        incidents = await nv.reads.incidents(country=cc, since=since.strftime(FMT), until=until.strftime(FMT),
                                             asn=asn, technique=api.norm_technique(q.get("technique")))
        recent = await nv.reads.verdicts(country=cc, since=hour_before(latest), limit=5000, path="direct")
    except Rejected as exc:
        return bad_request(request, exc)
    except AnalysisUnavailable as exc:
        return fragment_or_page(request, title, f"<h1>{escape(title)}</h1>" + unavailable(exc))
    as_of, stale = freshness(latest)
    shown = [r for r in rows if (not asn or r.asn == asn) and (not svc or r.service == svc)]
    incidents = [i for i in incidents if not svc or i.service in (svc, "*")]  # a country-wide one ("*") too
    told_incs = [await told(nv.reads, i, latest or "") for i in incidents]
    names = {r.asn: r.network_name for r in rows}
    body = (f"<h1>{escape(title)}</h1><p class=muted>Newest measurement {escape(when(latest)) if latest else 'none'}."
            f"</p>{filter_form(request, ['asn', 'service', 'path', 'since', 'until', 'hours'], names=names)}"
            f"<h2>Status by service and network</h2>{status_grid(shown, cc, quic_cells(recent))}"
            f"<h2>Incidents</h2>{incident_list(told_incs, stale)}"
            f"<h2>Timelines ({escape(since.strftime('%d %b %H:%M'))} to {escape(until.strftime('%d %b %H:%M'))} UTC"
            f"{path_words(path)})</h2>"
            f"<div id=timelines>{timelines(aggs, incidents, since, until, bucket, names, by='asn')}</div>")
    return fragment_or_page(request, title, body, as_of=as_of, stale=stale)


@read_route("/network/{asn}")
async def network(request: Request, asn: str):
    """Every service on one network over time."""
    try:
        asn = api.norm_asn(asn)
    except Rejected as exc:
        return error_page(request, 404, str(exc))
    nv = request.app.state.nv
    try:
        rows = await nv.reads.status(asn=asn)
        if not rows:
            return error_page(request, 404, f"No measurements from network {asn}.")
        latest = newest(rows)
        since, until, bucket, _ = window_of(request, latest)
        path = api.norm_path(request.query_params.get("path"))
        aggs = await nv.reads.aggregates(asn=asn, since=since.strftime(FMT), until=until.strftime(FMT),
                                         bucket=bucket, path=path)
        incs = await nv.reads.incidents(country=rows[0].country, asn=asn)  # this network's only
        recent = await nv.reads.verdicts(asn=asn, since=hour_before(latest), limit=5000, path="direct")
    except Rejected as exc:
        return bad_request(request, exc)
    except AnalysisUnavailable as exc:
        return fragment_or_page(request, asn, unavailable(exc))
    as_of, stale = freshness(latest)
    name = next((r.network_name for r in rows if r.network_name), None)
    title = f"{name} ({asn})" if name else asn
    cc = rows[0].country
    told_incs = [await told(nv.reads, i, latest or "") for i in incs]
    body = (f"<p><a href='/country/{escape(cc)}'>&larr; {escape(place_label(cc))}</a></p><h1>{escape(title)}</h1>"
            f"{filter_form(request, ['path', 'since', 'until', 'hours'])}"
            f"<h2>Status by service</h2>{status_grid(rows, cc, quic_cells(recent))}"
            f"<h2>Incidents on this network</h2>{incident_list(told_incs, stale)}"
            f"<h2>Every service over time{path_words(path)}</h2><div id=timelines>"
            f"{timelines(aggs, incs, trimmed(request, since, aggs, bucket), until, bucket, {asn: name}, by='service', title=title)}"
            f"</div>")
    return fragment_or_page(request, title, body, as_of=as_of, stale=stale)


@read_route("/service/{name}")
async def service(request: Request, name: str):
    """Every network measuring one service."""
    try:
        svc = api.norm_service(name, api.known_services(request))
    except Rejected as exc:
        return error_page(request, 404, str(exc))
    nv = request.app.state.nv
    try:
        rows = await nv.reads.status(service=svc)
        if not rows:
            return error_page(request, 404, f"No measurements of {service_name(svc)} yet.")
        latest = newest(rows)
        since, until, bucket, _ = window_of(request, latest)
        path = api.norm_path(request.query_params.get("path"))
        aggs = await nv.reads.aggregates(service=svc, since=since.strftime(FMT), until=until.strftime(FMT),
                                         bucket=bucket, path=path)
        incs = await nv.reads.incidents(service=svc)
    except Rejected as exc:
        return bad_request(request, exc)
    except AnalysisUnavailable as exc:
        return fragment_or_page(request, svc, unavailable(exc))
    as_of, stale = freshness(latest)
    title = service_name(svc)
    grids, lines = [], []
    names = {r.asn: r.network_name for r in rows}
    for cc in sorted({r.country for r in rows}):
        mine = [r for r in rows if r.country == cc]
        grids.append(f"<h3><a href='/country/{escape(cc)}'>{escape(place_label(cc))}</a></h3>{status_grid(mine, cc)}")
        lines.append(timelines([a for a in aggs if a.country == cc], [i for i in incs if i.country == cc],
                               trimmed(request, since, aggs, bucket), until, bucket, names, by="asn"))
    told_incs = [await told(nv.reads, i, latest or "") for i in incs]
    body = (f"<h1>{escape(title)}</h1>{filter_form(request, ['path', 'since', 'until', 'hours'])}"
            f"<h2>Status on every network</h2>{''.join(grids)}<h2>Incidents</h2>{incident_list(told_incs, stale)}"
            f"<h2>Over time{path_words(path)}</h2><div id=timelines>{''.join(lines)}</div>")
    return fragment_or_page(request, title, body, as_of=as_of, stale=stale)


CIRCUMVENTION = {Circumvention.WORKS:
                 "Circumvention works: the service is reachable through a VPN on the same networks.",
                 Circumvention.BLOCKED: "Circumvention fails: VPN connections are blocked too.",
                 Circumvention.UNKNOWN: "Circumvention: not measured in this window."}


def embed_snippet(request: Request, inc_id: str, title: str) -> str:
    base = (request.app.state.nv.settings.public_url or "").rstrip("/")
    return (f'<a href="{base}/incident/{inc_id}"><img src="{base}/api/v1/incidents/{inc_id}/chart.svg" '
            f'alt="{escape(title)} (chart by netvigil)" style="max-width:100%"></a>')


@read_route("/incident/{incident_id}")
async def incident_page(request: Request, incident_id: str):
    nv = request.app.state.nv
    if not api.ID_RE.match(incident_id):
        return error_page(request, 404, f"incident id {incident_id[:40]!r} is malformed")
    try:
        inc = await nv.reads.incident(incident_id, unconfirmed=True)  # its permalink answers, marked so
        if inc is None:
            return error_page(request, 404, f"No incident {incident_id[:80]!r}.",
                              "Incidents are listed on the home page and on each country's page.")
        inc, facts = await told(nv.reads, inc)
    except AnalysisUnavailable as exc:
        return fragment_or_page(request, "incident", unavailable(exc))
    call = ("an outage (the network itself fails, control targets too)" if inc.kind == IncidentKind.OUTAGE
            else "censorship (service-specific failures while control targets work)")
    title = incident_title(inc) if inc.confirmed else f"Unconfirmed: {incident_title(inc)}"
    iid = escape(inc.id)
    end = escape(inc.end + " UTC") if inc.end else ("not seen in the latest data" if facts.stale else "ongoing")
    embed = (f"<details><summary>Embed this chart</summary><label for=embed>HTML to paste</label>"
             f"<textarea id=embed class=embed rows=3 readonly>{escape(embed_snippet(request, inc.id, title))}</textarea>"
             f"</details>") if inc.confirmed else ""  # an unpublished claim is not offered for embedding
    body = (f"<p><a href='/country/{escape(inc.country)}'>&larr; {escape(place_label(inc.country))}</a></p>"
            f"<h1>{escape(title)}</h1>{unconfirmed_notice(inc, nv.settings.quorum)}"
            f"<blockquote id=statement>{escape(incident_text(inc, facts))}</blockquote>"
            f"<figure><img id=chart alt='{escape(title)}: share of blocked or slowed measurements per provider' "
            f"src='/api/v1/incidents/{iid}/chart.svg' width=900 height=420><figcaption class=muted>Chart: netvigil "
            f"observatory &middot; <a href='/incident/{iid}'>permalink</a> &middot; "
            f"<a href='/api/v1/incidents/{iid}/chart.svg'>SVG</a> &middot; <a href='/api/v1/incidents/{iid}/chart.png'>"
            f"PNG</a></figcaption></figure>{embed}"
            f"<dl class=facts><dt>call</dt><dd id=kind>{escape(call)}</dd><dt>start</dt><dd>{escape(inc.start)} UTC"
            f"</dd><dt>end</dt><dd>{end}</dd><dt>circumvention</dt><dd id=circumvention "
            f"class={escape(inc.circumvention)}>{escape(CIRCUMVENTION.get(inc.circumvention, inc.circumvention))}"
            f"</dd></dl><h2>Networks and techniques</h2>{network_table(inc, facts)}"
            f"<h2>Evidence</h2>{evidence_block(inc)}"
            f"<p><a href='/api/v1/incidents/{iid}'>JSON</a></p>")
    return fragment_or_page(request, title, body, as_of=facts.as_of, stale=facts.stale)


@read_route("/measurement/{uid}")
async def measurement_page(request: Request, uid: str):
    try:
        raw = await api.stored_measurement(request, uid)
    except Rejected as exc:
        return error_page(request, 404, str(exc))
    if raw is None:
        return error_page(request, 404, f"No measurement {uid[:80]!r}.")
    try:
        m = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return error_page(request, 500, f"measurement {uid[:80]!r} is stored but cannot be read")
    nv = request.app.state.nv
    t = str(m.get("measurement_start_time", ""))[:19].replace("T", " ")
    verdicts = []
    try:
        if len(t) == 19:
            until = times.shift(t, 1)
            verdicts = [v for v in await nv.reads.verdicts(country=m.get("probe_cc"), asn=m.get("probe_asn"),
                                                           since=t, until=until, limit=5000)
                        if v.measurement_uid == uid]
    except (AnalysisUnavailable, Exception):  # the steps are still worth showing
        verdicts = []
    rows = "".join(
        f"<tr><td>{escape(v.service or '')}</td><td class='cell {escape(v.klass)}' data-class='{escape(v.klass)}'>"
        f"{escape(technique_label(v.technique) or v.klass)}</td><td>{v.confidence:.2f}</td>"
        f"<td class=rules>{'<br>'.join(f'<code>{escape(r)}</code>' for r in v.rule_ids)}</td>"
        f"<td class=rules><code>{escape(v.rules_version)}</code></td></tr>"
        for v in verdicts)
    verdict = (f"<div class=scroll tabindex=0 role=region aria-label='verdicts'><table class=grid id=verdict><thead><tr><th>service</th><th>verdict</th>"
               f"<th>confidence</th><th>rule ids</th><th>rules version</th></tr></thead><tbody>{rows}</tbody></table>"
               f"</div>" if rows else "<p class=muted>No verdict stored for this measurement yet.</p>")
    ann = m.get("annotations") if isinstance(m.get("annotations"), dict) else {}
    cc = str(m.get("probe_cc", ""))
    facts = (f"<dl class=facts><dt>time</dt><dd>{escape(t)} UTC</dd><dt>country</dt><dd><a href='/country/"
             f"{escape(cc)}'>{escape(place_label(cc))}</a></dd><dt>network</dt><dd><a href='/network/"
             f"{escape(str(m.get('probe_asn', '')))}'>{escape(str(m.get('probe_network_name') or ''))} "
             f"{escape(str(m.get('probe_asn', '')))}</a></dd><dt>test</dt><dd>{escape(str(m.get('test_name', '')))}"
             f"</dd><dt>input</dt><dd>{escape(str(m.get('input') or ''))}</dd><dt>path</dt>"
             f"<dd>{escape(str(ann.get('path') or 'direct'))}</dd><dt>report</dt><dd><code>"
             f"{escape(str(m.get('report_id') or ''))}</code></dd></dl>")
    body = (f"<h1>Measurement</h1><p class=muted><code>{escape(uid)}</code></p>{facts}<h2>Verdict</h2>{verdict}"
            f"<h2>Steps</h2>{steps_html(m)}<p><a href='/api/v1/measurement/{escape(uid)}'>Raw JSON</a></p>")
    try:
        as_of, stale = freshness(await latest_time(nv.reads))
    except AnalysisUnavailable:
        as_of, stale = None, False
    return fragment_or_page(request, f"Measurement {uid}", body, as_of=as_of, stale=stale)
