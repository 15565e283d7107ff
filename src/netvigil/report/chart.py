"""Incident charts: share of failing measurements per network over time, onset marked.

Built with Altair from AggregateRow buckets, rendered to SVG/PNG by vl-convert (no
browser, no network). The onset (incident start) and the end are drawn as rules, so a
reader sees when the restriction began on each provider.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import altair as alt
import vl_convert as vlc

from netvigil.model.records import AggregateRow, Incident
from netvigil.model import times
from netvigil.model.vocabulary import NOTHING_FOUND, IncidentKind
from netvigil.report.sources import credit_lines
from netvigil.report.text import incident_title
from netvigil.report.timeline import COLOURS, WORDS

FMT = times.FORMAT


def failing_share(row: AggregateRow) -> float:
    if row.total <= 0:
        return 0.0
    ok = sum(row.counts.get(k, 0) for k in NOTHING_FOUND)
    return max(0.0, (row.total - ok) / row.total)


def window(incident: Incident, now: str | None = None) -> tuple[str, str, str]:
    """(since, until, bucket) around the incident: some context before, ~100 buckets."""
    start = times.naive(incident.start)
    end = times.naive(incident.end) if incident.end else (
        times.naive(now) if now else start + timedelta(hours=6))
    span = max(end - start, timedelta(minutes=10))
    pad = span / 2
    total = span + 2 * pad
    minutes = total.total_seconds() / 60 / 100
    bucket = next((b for m, b in ((1, "1m"), (5, "5m"), (10, "10m"), (30, "30m"), (60, "1h"), (360, "6h"))
                   if minutes <= m), "1d")
    return (start - pad).strftime(FMT), (end + pad).strftime(FMT), bucket


def network_names(incident: Incident) -> dict[str, str]:
    return {n.asn: (f"{n.network_name} ({n.asn})" if n.network_name else n.asn) for n in incident.networks}


CLASS_WORDS = WORDS  # a class in words, as the dashboard's timelines say it
# the timelines' colours by those words; "no verdict" darker than their grey, which is the
# colour of this chart's step line
CLASS_COLOURS = {WORDS[k]: c for k, c in COLOURS.items()} | {WORDS["unknown"]: "#616161"}


def _rows_for(incident: Incident, rows: list[AggregateRow]) -> list[AggregateRow]:
    """The buckets behind the chart: the incident's service, or for an outage (service "*")
    the control targets of each network (every service folded when there are none)."""
    mine = [r for r in rows if r.country == incident.country]
    if incident.kind != IncidentKind.OUTAGE and incident.service not in ("*", ""):
        return [r for r in mine if r.service == incident.service]
    if any(r.service == "control" for r in mine):  # connectivity itself: blocked services would blur it
        mine = [r for r in mine if r.service == "control"]
    folded: dict[tuple[str, str], AggregateRow] = {}
    for r in mine:
        a = folded.setdefault((r.bucket, r.asn), AggregateRow(bucket=r.bucket, country=r.country, asn=r.asn,
                                                              service="*", total=0, counts={}, techniques={}))
        a.total += r.total
        for k, v in r.counts.items():
            a.counts[k] = a.counts.get(k, 0) + v
    return sorted(folded.values(), key=lambda a: (a.bucket, a.asn))


def chart_points(incident: Incident, rows: list[AggregateRow], names: dict[str, str]) -> list[dict]:
    from netvigil.report.timeline import dominant

    out = []
    for r in _rows_for(incident, rows):
        cls = dominant(r)
        out.append({"kind": "point", "time": r.bucket.replace(" ", "T"), "network": names.get(r.asn, r.asn),
                    "failing": round(failing_share(r), 4), "measurements": r.total,
                    "class": CLASS_WORDS.get(cls, cls)})
    return out


def change_marks(incident: Incident, names: dict[str, str]) -> list[dict]:
    """One mark per change of technique on a network (Twitter's 12:00 throttle-to-reset)."""
    from netvigil.report.text import technique_label

    out = []
    for n in incident.networks:
        steps = [t for t in (n.techniques or []) if t.get("technique") and not t.get("secondary")]
        for a, b in zip(steps, steps[1:]):
            if b.get("start"):
                out.append({"kind": "change", "time": str(b["start"]).replace(" ", "T"),
                            "network": names.get(n.asn, n.asn),
                            "label": f"{technique_label(a['technique'])} \u2192 {technique_label(b['technique'])}"})
    return out


def incident_chart(incident: Incident, rows: list[AggregateRow],
                   names: dict[str, str | None] | None = None, permalink: str | None = None) -> alt.FacetChart:
    """One small panel per provider (identical curves would hide each other on one panel),
    the onset (and end) on every panel, technique changes marked and labelled, the class of
    each point by colour AND shape with a legend, a credit line with the permalink, and the
    third-party data's credits (report/sources.py), as the pages' footer gives them.
    `names`: ASN -> network name for networks not in the incident (e.g. from status rows)."""
    names = {a: (f"{n} ({a})" if n else a) for a, n in (names or {}).items()} | network_names(incident)
    onset = incident.start.replace(" ", "T")
    end = incident.end.replace(" ", "T") if incident.end else None
    data = chart_points(incident, rows, names) + change_marks(incident, names)
    for d in data:
        d["onset"], d["end"] = onset, end
    x = alt.X("time:T", title="time (UTC)", axis=alt.Axis(format="%H:%M", labelOverlap="greedy", tickCount=8))
    classes = sorted({d["class"] for d in data if d["kind"] == "point"})
    colour = alt.Color("class:N", title="measurements", scale=alt.Scale(
        domain=classes, range=[CLASS_COLOURS.get(c, "#616161") for c in classes]),
        legend=alt.Legend(orient="top", direction="horizontal", symbolSize=80))
    points = alt.Chart().transform_filter(alt.datum.kind == "point")
    lines = points.mark_line(interpolate="step-after", color="#9e9e9e").encode(
        x=x, y=alt.Y("failing:Q", title=None,
                     scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", tickCount=2)))
    dots = points.mark_point(filled=True, size=36).encode(
        x=x, y="failing:Q", color=colour, shape=alt.Shape("class:N", title="measurements", scale=alt.Scale(domain=classes)),
        tooltip=["time:T", "network:N", "class:N", alt.Tooltip("failing:Q", format=".0%"), "measurements:Q"])
    layers = [lines, dots, alt.Chart().mark_rule(color="#b00020", strokeDash=[4, 3], size=2).encode(x="onset:T")]
    if end:
        layers.append(alt.Chart().mark_rule(color="#2e7d32", strokeDash=[4, 3], size=2).encode(x="end:T"))
    changes = alt.Chart().transform_filter(alt.datum.kind == "change")
    layers += [changes.mark_rule(color="#000", strokeDash=[1, 2], size=2).encode(x="time:T"),
               changes.mark_text(align="left", dx=3, dy=-14, fontSize=10, color="#000").encode(
                   x="time:T", y=alt.value(0), text="label:N")]
    what = "control targets failing" if incident.kind == IncidentKind.OUTAGE else "share of measurements blocked or slowed"
    subtitle = [f"{what} per provider; onset {incident.start[11:16]} UTC"
                + (f", end {incident.end[11:16]} UTC" if incident.end else ""),
                "Source: netvigil observatory" + (f" \u00b7 {permalink}" if permalink else ""),
                *(f"Data: {line}" for line in credit_lines())]  # embedded elsewhere, the chart keeps its credits
    return alt.layer(*layers, data=alt.Data(values=data)).properties(width=560, height=46).facet(
        row=alt.Row("network:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=11)),
    ).properties(title=alt.TitleParams(incident_title(incident) if incident.confirmed else  # never passed off as published
                                       f"Unconfirmed: {incident_title(incident)}", subtitle=subtitle, subtitleColor="#333",
                                       anchor="start"))


def warm_up() -> None:
    """Start the renderer (a V8 instance: seconds the first time) before the first reader
    asks for a chart; called in a thread when the app starts."""
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "data": {"values": [{"a": 1}]},
            "mark": "point", "encoding": {"x": {"field": "a", "type": "quantitative"}}}
    try:
        vlc.vegalite_to_svg(spec)
        vlc.vegalite_to_png(spec)
    except Exception:  # the first real chart will say what is wrong
        pass


def render(chart: alt.TopLevelMixin | dict, fmt: str) -> bytes:
    """`chart` drawn as SVG or PNG; a spec already made (`chart.to_dict()`, which validates
    the whole chart: ~0.2 s) may be given, so drawing both formats validates once."""
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    if fmt == "svg":
        return vlc.vegalite_to_svg(spec).encode()
    if fmt == "png":
        return vlc.vegalite_to_png(spec, scale=2)
    raise ValueError(f"unknown chart format {fmt!r}")


def chart_query(incident: Incident) -> dict:
    since, until, bucket = window(incident)
    service = None if incident.kind == IncidentKind.OUTAGE or incident.service in ("*", "") else incident.service
    return {"country": incident.country, "service": service, "since": since, "until": until, "bucket": bucket}


def aggregates_for(obs, incident: Incident) -> list[AggregateRow]:
    """Fetch the rows behind the chart from an Observatory (any object with .aggregates)."""
    q = chart_query(incident)
    try:
        return obs.aggregates(**q)
    except Exception:  # an engine without this bucket size: hourly always works
        return obs.aggregates(**(q | {"bucket": "1h"}))


class ChartCache:
    """Rendered charts keyed by (incident, format, permalink, data version): a chart is drawn
    once per version of the data behind it (vl-convert takes a few hundred ms), then served
    from memory. Bounded: the oldest entries go first."""

    def __init__(self, size: int = 256):
        self.size = size
        self.items: dict[tuple, bytes] = {}
        self.hits = self.misses = 0

    def get(self, key: tuple) -> bytes | None:
        data = self.items.get(key)
        if data is None:
            self.misses += 1
        else:
            self.hits += 1
        return data

    def put(self, key: tuple, data: bytes) -> None:
        self.items[key] = data
        while len(self.items) > self.size:
            self.items.pop(next(iter(self.items)))


CACHE = ChartCache()


def data_version(reads, incident: Incident) -> str:
    """Moves whenever the analysis has taken in new measurements or the incident changed."""
    import hashlib

    import msgspec

    body = hashlib.blake2b(msgspec.json.encode(incident), digest_size=8).hexdigest()
    return f"{reads.analysed}.{body}"


async def chart_for_incident(reads, incident: Incident, fmt: str, permalink: str | None = None,
                             cache: ChartCache | None = CACHE) -> bytes:
    key = (incident.id, fmt, permalink, data_version(reads, incident))
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    q = chart_query(incident)
    try:
        rows = await reads.aggregates(**q)
    except Exception:
        rows = await reads.aggregates(**(q | {"bucket": "1h"}))
    try:
        status = await reads.status(country=incident.country)
        names = {r.asn: r.network_name for r in status}
    except Exception:
        names = {}
    chart = incident_chart(incident, rows, names, permalink)
    data = await asyncio.get_running_loop().run_in_executor(None, render, chart, fmt)
    if cache is not None:
        cache.put(key, data)
    return data
