"""The pieces the dashboard pages are built from: grid, incident list, network table,
evidence, filters, timelines. Plain HTML with html.escape on every value."""

from __future__ import annotations

from datetime import datetime
from html import escape

from fastapi import Request

from netvigil.model.records import AggregateRow, Incident, StatusRow, Verdict
from netvigil.model.vocabulary import FAILING, NOTHING_FOUND, IncidentKind, Technique, VerdictClass
from netvigil.report.enrich import QUIC_RULE
from netvigil.report.text import Facts, incident_text, incident_title, plural, service_name, \
    technique_label
from netvigil.report.timeline import dominant, legend, timeline_svg


def unavailable(exc: Exception) -> str:
    return (f"<p class=banner>Analysis is not available yet ({escape(str(exc))}). Measurements are still "
            "being collected; this page refreshes by itself.</p>")


def cell_class(row: StatusRow) -> str:
    return row.klass if row.klass in FAILING or row.klass in NOTHING_FOUND else "unknown"


def net_label(asn: str, name: str | None) -> str:
    link = f"<a href='/network/{escape(asn)}'>{escape(name or asn)}</a>"
    return f"{link}<br><small>{escape(asn)}</small>" if name else link


def quic_cells(verdicts: list[Verdict]) -> set[tuple[str, str]]:
    """(service, asn) whose latest direct verdict saw QUIC blocked beside its main verdict."""
    latest: dict[tuple[str, str], Verdict] = {}
    for v in verdicts:
        key = (v.service or "", v.probe_asn)
        if v.path == "direct" and (key not in latest or v.measurement_start_time > latest[key].measurement_start_time):
            latest[key] = v
    return {k for k, v in latest.items() if QUIC_RULE in v.rule_ids or v.technique == Technique.QUIC_BLOCKED}


def status_grid(rows: list[StatusRow], cc: str, quic: set[tuple[str, str]] | None = None) -> str:
    quic = quic or set()
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
            also = (svc, asn) in quic and r.technique != Technique.QUIC_BLOCKED
            tip = (f"{r.klass} {r.technique or ''}{' + QUIC blocked' if also else ''} since {r.since or '?'}; "
                   f"last {r.last_measurement or '?'}")
            inner = escape(label) + ("<small class=quic>+ QUIC blocked</small>" if also else "")
            key = f"{svc}|{asn}"
            if r.incident_id:
                inner = f"<a href='/incident/{escape(r.incident_id)}'>{inner}</a>"
            else:
                inner = f"<span tabindex=0>{inner}</span>"
            tds.append(f"<td class='cell {cell_class(r)}' title='{escape(tip)}' data-service='{escape(svc)}' "
                       f"data-asn='{escape(asn)}' data-class='{escape(r.klass)}' data-quic='{int(also)}' "
                       f"data-key='{escape(key)}'>{inner}</td>")
        body.append(f"<tr><th scope=row><a href='/service/{escape(svc)}'>{escape(service_name(svc))}</a></th>"
                    f"{''.join(tds)}</tr>")
    return (f"<div class=scroll tabindex=0 role=region aria-label='status grid'><table class=grid id=grid data-country='{escape(cc)}'><thead><tr>"
            f"<th scope=col>service \\ network</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def unconfirmed_block(incidents: list[Incident], cells: int) -> str:
    """Signals the quorum does not back (analysis/incidents/quorum.py), shown apart from the status and
    the incidents: what they claim, and how many independent probes say so."""
    if not incidents and not cells:
        return ""
    items = "".join(
        f"<li data-key='unc-{escape(i.id)}'><a href='/incident/{escape(i.id)}'>{escape(incident_title(i))}</a> "
        f"<small>backed by "
        f"{plural((i.evidence.independent_probes or 0) if i.evidence else 0, 'independent probe')}</small></li>"
        for i in incidents)
    return (f"<section id=unconfirmed><h2>Unconfirmed signals</h2><p class=muted>Not published: fewer "
            f"independent probes agree than this observatory requires, and no trusted probe "
            f"({plural(len(incidents), 'incident')}, {plural(cells, 'status cell')}; "
            f"<a href='/api/v1/incidents?include=unconfirmed'>JSON</a>).</p>"
            f"<ul class=unconfirmed>{items}</ul></section>")


def unconfirmed_notice(inc: Incident, quorum: int) -> str:
    """The banner of an unconfirmed incident's page: not published, who backs it, how many must."""
    if inc.confirmed:
        return ""
    ev = inc.evidence
    n = ev.independent_probes if ev is not None and ev.independent_probes is not None else 0
    nets = ev.source_networks if ev is not None and ev.source_networks is not None else 0
    return (f"<p id=unconfirmed-notice class=banner role=status><strong>Unconfirmed, not published.</strong> "
            f"Backed by {plural(n, 'independent probe')} from {plural(nets, 'source network')}; "
            f"{quorum} {'is' if quorum == 1 else 'are'} required (or a trusted probe). It is not on the "
            f"status, in the incident lists or in alerts until enough probes agree.</p>")


def incident_list(incidents: list[tuple[Incident, Facts]], stale: bool = False) -> str:
    if not incidents:
        return "<p class=muted>No incidents.</p>"
    items = []
    for inc, facts in sorted(incidents, key=lambda p: p[0].start, reverse=True):
        if inc.end is not None:
            state = f"ended {escape(inc.end)} UTC"
        else:
            state = "still seen in the latest data" if stale else "ongoing"
        items.append(f"<li class='incident {escape(inc.kind)}' data-id='{escape(inc.id)}' data-key='inc-{escape(inc.id)}'>"
                     f"<a href='/incident/{escape(inc.id)}'>{escape(incident_title(inc))}</a> <span class=state>"
                     f"{state}</span><p>{escape(incident_text(inc, facts))}</p></li>")
    return f"<ul class=incidents id=incidents>{''.join(items)}</ul>"


def network_table(inc: Incident, facts: Facts | None = None) -> str:
    facts = facts or Facts()
    rows = []
    for n in inc.networks:
        steps = [t for t in (n.techniques or []) if not t.get("secondary")]
        changes = " &rarr; ".join(
            f"<span title='{escape(str(t.get('technique')))}'>{escape(technique_label(t.get('technique')))}</span> "
            f"{'<small>~' + format(t['rate_bps'] / 1000, '.0f') + ' kbit/s</small> ' if t.get('rate_bps') else ''}"
            f"<small>({escape(str(t.get('start', ''))[11:16])}"
            f"{'&ndash;' + escape(str(t.get('end'))[11:16]) if t.get('end') else ''})</small>"
            for t in steps)
        if n.asn in facts.quic:
            changes += f" <small>+ QUIC blocked from {escape(facts.quic[n.asn][11:16])}</small>"
        if n.asn in facts.level:
            changes += f" <small>{round(100 * facts.level[n.asn])}% of ordinary levels</small>"
        now = (steps[-1].get("technique") if steps else None) or n.technique or ""
        end = n.end or ("not seen in the latest data" if facts.stale else "ongoing")
        rows.append(f"<tr><td><a href='/network/{escape(n.asn)}'>{escape(n.network_name or n.asn)}</a></td>"
                    f"<td>{escape(n.asn)}</td><td class=tech>{escape(str(now))}</td><td>{escape(n.start)}</td>"
                    f"<td>{escape(end)}</td><td>{changes}</td></tr>")
    return ("<div class=scroll tabindex=0 role=region aria-label='networks'><table class=networks id=networks><thead><tr><th>provider</th><th>ASN</th>"
            "<th>technique (latest)</th><th>start</th><th>end</th><th>how it changed</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def evidence_block(inc: Incident) -> str:
    ev = inc.evidence
    if ev is None:
        return "<p class=muted>No evidence bundle.</p>"
    total = ev.measurement_count or len(ev.measurement_uids)
    links = "".join(f"<li><a href='/measurement/{escape(u)}'>{escape(u)}</a></li>" for u in ev.measurement_uids)
    every = f"/api/v1/verdicts?country={escape(inc.country)}&amp;since={escape(inc.start)}" + (
        f"&amp;until={escape(inc.end)}" if inc.end else "") + (
        f"&amp;service={escape(inc.service)}" if inc.service not in ("*", "") else "") + "&amp;limit=1000"
    sample = (f"A sample of {len(ev.measurement_uids)} covering every network and phase is linked below; "
              f"<a href='{every}'>all verdicts of this window</a> (JSON)." if len(ev.measurement_uids) < total else "")
    backed = ("" if ev.independent_probes is None else
              f" Backed by {plural(ev.independent_probes, 'independent probe')} from "
              f"{plural(ev.source_networks or 0, 'source network')}" + (" (a trusted probe among them)." if ev.trusted else "."))
    if not inc.confirmed:
        backed += " <strong>Unconfirmed</strong>: fewer independent probes than the observatory's quorum, none trusted."
    return (f"<div id=evidence><p>{plural(total, 'measurement')} from {plural(ev.vantage_networks, 'vantage network')};{backed} rules version "
            f"<code>{escape(ev.rules_version)}</code>. {sample}</p><ul class=uids>{links}</ul></div>")


def filter_form(request: Request, fields: list[str], names: dict[str, str | None] | None = None) -> str:
    """A GET form with the page's filters (the same parameters as the API)."""
    q = request.query_params
    out = []
    for f in fields:
        v = escape(q.get(f, ""))
        if f == "asn" and names:
            opts = "".join(f"<option value='{escape(a)}'{' selected' if q.get('asn') == a else ''}>"
                           f"{escape(n or a)} ({escape(a)})</option>" for a, n in sorted(names.items()))
            out.append(f"<label>network<select name=asn><option value=''>all</option>{opts}</select></label>")
        elif f in ("since", "until"):
            out.append(f"<label>{'from' if f == 'since' else 'until'} (UTC)<input type=date name={f} "
                       f"value='{v[:10]}'></label>")
        elif f == "path":
            opts = "".join(f"<option value='{p}'{' selected' if q.get('path', 'direct') == p else ''}>{label}</option>"
                           for p, label in (("direct", "direct"), ("vpn", "through a VPN"),
                                            ("proxy", "through a proxy"), ("any", "every path")))
            out.append(f"<label>path<select name=path>{opts}</select></label>")
        elif f == "hours":
            out.append(f"<label>or last hours<input type=number min=1 max=1440 name=hours value='{v}' "
                       f"inputmode=numeric size=5></label>")
        else:
            out.append(f"<label>{escape(f)}<input name={escape(f)} value='{v}' size=12></label>")
    return f"<form class=filters method=get role=search>{''.join(out)}<button type=submit>filter</button></form>"


def timelines(aggs: list[AggregateRow], incidents: list[Incident], since: datetime, until: datetime, bucket: str,
              names: dict[str, str | None], *, by: str, title: str | None = None) -> str:
    """One timeline per service (strips per network), or one for a network (strips per service),
    with the legend of the classes drawn."""
    if not aggs:
        return "<p class=muted>No measurements in this window.</p>"
    classes = sorted({dominant(a) for a in aggs}, key=lambda c: (c != VerdictClass.OK, c))
    if by == "service":
        return legend(classes) + timeline_svg("*", aggs, incidents, since, until, bucket, names, by="service",
                                              title=title)
    out = [legend(classes)]
    for svc in sorted({a.service for a in aggs}, key=lambda s: (s == "control", s)):
        out.append(timeline_svg(svc, [a for a in aggs if a.service == svc],
                                [i for i in incidents if i.service == svc or i.kind == IncidentKind.OUTAGE],
                                since, until, bucket, names))
    return "".join(out)
