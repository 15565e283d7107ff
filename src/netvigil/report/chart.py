"""Incident charts: share of failing measurements per network over time, onset marked.

Built with Altair from AggregateRow buckets, rendered to SVG/PNG by vl-convert (no
browser, no network). The onset (incident start) and the end are drawn as rules, so a
reader sees when the restriction began on each provider.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import altair as alt
import vl_convert as vlc

from netvigil.model.records import AggregateRow, Incident
from netvigil.report.text import incident_title

FMT = "%Y-%m-%d %H:%M:%S"
NOT_FAILING = ("ok", "unknown")


def failing_share(row: AggregateRow) -> float:
    if row.total <= 0:
        return 0.0
    ok = sum(row.counts.get(k, 0) for k in NOT_FAILING)
    return max(0.0, (row.total - ok) / row.total)


def window(incident: Incident, now: str | None = None) -> tuple[str, str, str]:
    """(since, until, bucket) around the incident: some context before, ~100 buckets."""
    start = datetime.strptime(incident.start[:19], FMT)
    end = datetime.strptime(incident.end[:19], FMT) if incident.end else (
        datetime.strptime(now[:19], FMT) if now else start + timedelta(hours=6))
    span = max(end - start, timedelta(minutes=10))
    pad = span / 2
    total = span + 2 * pad
    minutes = total.total_seconds() / 60 / 100
    bucket = next((b for m, b in ((1, "1m"), (5, "5m"), (10, "10m"), (30, "30m"), (60, "1h"), (360, "6h"))
                   if minutes <= m), "1d")
    return (start - pad).strftime(FMT), (end + pad).strftime(FMT), bucket


def network_names(incident: Incident) -> dict[str, str]:
    return {n.asn: (f"{n.network_name} ({n.asn})" if n.network_name else n.asn) for n in incident.networks}


def incident_chart(incident: Incident, rows: list[AggregateRow],
                   names: dict[str, str | None] | None = None) -> alt.FacetChart:
    """One small panel per provider (identical curves would hide each other on one panel),
    the onset (and end) drawn on every panel and named in the subtitle.
    `names`: ASN -> network name for networks not in the incident (e.g. from status rows)."""
    names = {a: (f"{n} ({a})" if n else a) for a, n in (names or {}).items()} | network_names(incident)
    onset = incident.start.replace(" ", "T")
    end = incident.end.replace(" ", "T") if incident.end else None
    data = [
        {"time": r.bucket.replace(" ", "T"), "network": names.get(r.asn, r.asn),
         "failing": round(failing_share(r), 4), "measurements": r.total, "onset": onset, "end": end}
        for r in rows if r.service == incident.service and r.country == incident.country
    ]
    x = alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%d %b %H:%M"))
    lines = alt.Chart().mark_line(point=True, interpolate="step-after").encode(
        x=x,
        y=alt.Y("failing:Q", title="failing", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", tickCount=2)),
        color=alt.Color("network:N", legend=None),
        tooltip=["time:T", "network:N", alt.Tooltip("failing:Q", format=".0%"), "measurements:Q"],
    )
    layers = [lines, alt.Chart().mark_rule(color="#b00020", strokeDash=[4, 3], size=2).encode(x="onset:T")]
    if end:
        layers.append(alt.Chart().mark_rule(color="#2e7d32", strokeDash=[4, 3], size=2).encode(x="end:T"))
    subtitle = f"onset {incident.start[11:16]} UTC" + (f", end {incident.end[11:16]} UTC" if incident.end else "")
    return alt.layer(*layers, data=alt.Data(values=data)).properties(width=600, height=46).facet(
        row=alt.Row("network:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=11)),
    ).properties(title=alt.TitleParams(incident_title(incident), subtitle=subtitle, subtitleColor="#b00020"))


def render(chart: alt.TopLevelMixin, fmt: str) -> bytes:
    spec = chart.to_dict()
    if fmt == "svg":
        return vlc.vegalite_to_svg(spec).encode()
    if fmt == "png":
        return vlc.vegalite_to_png(spec, scale=2)
    raise ValueError(f"unknown chart format {fmt!r}")


def aggregates_for(obs, incident: Incident) -> list[AggregateRow]:
    """Fetch the rows behind the chart from an Observatory (any object with .aggregates)."""
    since, until, bucket = window(incident)
    try:
        return obs.aggregates(country=incident.country, service=incident.service, since=since, until=until,
                              bucket=bucket)
    except Exception:  # an engine without this bucket size: hourly always works
        return obs.aggregates(country=incident.country, service=incident.service, since=since, until=until,
                              bucket="1h")


async def chart_for_incident(pump, incident: Incident, fmt: str) -> bytes:
    since, until, bucket = window(incident)
    try:
        rows = await pump.call("aggregates", country=incident.country, service=incident.service,
                               since=since, until=until, bucket=bucket)
    except Exception:
        rows = await pump.call("aggregates", country=incident.country, service=incident.service,
                               since=since, until=until, bucket="1h")
    try:
        status = await pump.call("status", country=incident.country)
        names = {r.asn: r.network_name for r in status}
    except Exception:
        names = {}
    chart = incident_chart(incident, rows, names)
    return await asyncio.get_running_loop().run_in_executor(None, render, chart, fmt)
