"""Timelines as inline SVG: one strip per network (or per service), one cell per time bucket.

Drawn on the server from AggregateRow buckets (no chart library per request, so the
dashboard stays fast); the class of a cell is the dominant failing class when at least half
of its measurements fail, shown by colour AND pattern (stripes for slowed or partly failing,
cross-hatch for no connectivity) with a legend; incident onsets and ends and changes of
technique are vertical marks. The SVG scales to its box (viewBox, width 100%).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from netvigil.model.records import AggregateRow, Incident
from netvigil.model import times
from netvigil.model.times import FORMAT, bucket_seconds
from netvigil.model.vocabulary import NOTHING_FOUND, IncidentKind, VerdictClass
from netvigil.report.text import service_name, technique_label

FMT = FORMAT
V = VerdictClass
PARTIAL = "partial"  # a cell of the timeline, not a verdict class: some of its measurements fail, fewer than half
COLOURS = {V.OK: "#2e7d32", V.DNS: "#c62828", V.TCP: "#ad1457", V.TLS: "#b23c00", V.HTTP: "#4a148c",
           V.QUIC: "#00695c", V.THROTTLED: "#6a1b9a", V.DOWN: "#455a64", V.OUTAGE: "#263238",
           V.VPN: "#1565c0", V.UNKNOWN: "#9e9e9e", PARTIAL: "#8d6e00"}
WORDS = {V.OK: "working", V.DNS: "DNS blocked", V.TCP: "IP blocked", V.TLS: "TLS blocked", V.HTTP: "HTTP blocked",
         V.QUIC: "QUIC blocked", V.THROTTLED: "slowed (throttled)", V.DOWN: "service down",
         V.VPN: "VPN blocked", V.OUTAGE: "no connectivity", PARTIAL: "partly failing", V.UNKNOWN: "no verdict"}
PATTERNS = {V.THROTTLED: "stripes", PARTIAL: "stripes", V.OUTAGE: "hatch"}
LEFT, CELL_H, WIDTH = 150, 16, 900


def bucket_delta(bucket: str) -> timedelta:
    """A bucket's length as the timelines step by it (read as the store's aggregates read it)."""
    return timedelta(seconds=bucket_seconds(bucket))


def dominant(row: AggregateRow) -> str:
    if row.total <= 0:
        return V.UNKNOWN
    failing = {k: v for k, v in row.counts.items() if k not in NOTHING_FOUND and v > 0}
    bad = sum(failing.values())
    if bad * 2 >= row.total and failing:
        return max(failing, key=failing.get)
    if bad > 0:
        return PARTIAL
    return V.OK if row.counts.get(V.OK, 0) else V.UNKNOWN


def _defs() -> str:
    return ("<defs><pattern id=nv-stripes width=6 height=6 patternUnits=userSpaceOnUse patternTransform='rotate(45)'>"
            "<rect width=3 height=6 fill='#fff' fill-opacity=.45 /></pattern>"
            "<pattern id=nv-hatch width=6 height=6 patternUnits=userSpaceOnUse>"
            "<path d='M0 0L6 6M6 0L0 6' stroke='#fff' stroke-opacity=.5 /></pattern></defs>")


def _cell(x: float, y: float, w: float, cls: str, tip: str) -> str:
    rect = (f"<rect x={x:.1f} y={y} width={w:.1f} height={CELL_H - 2} fill='{COLOURS.get(cls, '#9e9e9e')}' "
            f"class='tl-cell {cls}'><title>{escape(tip)}</title></rect>")
    pattern = PATTERNS.get(cls)
    if pattern:
        rect += f"<rect x={x:.1f} y={y} width={w:.1f} height={CELL_H - 2} fill='url(#nv-{pattern})' pointer-events=none />"
    return rect


def legend(classes: list[str]) -> str:
    """The classes drawn, each with its swatch (colour and pattern) and its name."""
    items = []
    for cls in classes:
        swatch = f"<rect width=14 height=12 fill='{COLOURS.get(cls, '#9e9e9e')}' />"
        if cls in PATTERNS:
            swatch += f"<rect width=14 height=12 fill='url(#nv-{PATTERNS[cls]})' />"
        items.append(f"<li data-class='{escape(cls)}'><svg width=14 height=12 aria-hidden=true>{_defs()}{swatch}</svg>"
                     f"{escape(WORDS.get(cls, cls))}</li>")
    return f"<ul class=legend aria-label='legend'>{''.join(items)}</ul>"


def timeline_svg(service: str, rows: list[AggregateRow], incidents: list[Incident], since: datetime,
                 until: datetime, bucket: str, names: dict[str, str | None], *, by: str = "asn",
                 title: str | None = None) -> str:
    """Strips per network (`by="asn"`, a service's timeline) or per service (`by="service"`,
    a network's timeline)."""
    step = bucket_delta(bucket)
    n = max(1, int((until - since) / step))
    cw = (WIDTH - LEFT) / n
    keys = sorted({getattr(r, by) for r in rows}, key=lambda k: (k == "control", k))
    height = 28 + CELL_H * max(1, len(keys)) + 60
    heading = title or service_name(service)

    def x(t: datetime) -> float:
        return LEFT + (t - since).total_seconds() / (until - since).total_seconds() * (WIDTH - LEFT)

    parts = [f"<svg class=timeline data-service='{escape(service)}' viewBox='0 0 {WIDTH} {height}' "
             f"preserveAspectRatio='xMinYMin meet' role=img aria-label='timeline of {escape(heading)}'>", _defs(),
             f"<text x=0 y=14 class=tl-title>{escape(heading)}</text>"]
    by_cell = {(getattr(r, by), r.bucket[:19]): r for r in rows}
    for i, key in enumerate(keys):
        y = 24 + i * CELL_H
        label = (names.get(key) or key) if by == "asn" else service_name(key)
        parts.append(f"<text x=0 y={y + 12} class=tl-net>{escape(label[:22])}</text>")
        for j in range(n):
            t = since + j * step
            r = by_cell.get((key, t.strftime(FMT)))
            if r is None:
                continue
            cls = dominant(r)
            tip = f"{label} {t.strftime('%H:%M')}: {WORDS.get(cls, cls)}; {r.total} measurements, " + ", ".join(
                f"{k} {v}" for k, v in sorted(r.counts.items()))
            parts.append(_cell(x(t), y, max(cw - 0.5, 0.5), cls, tip))
    base = 24 + CELL_H * max(1, len(keys))
    parts += _axis(since, until, base, x)
    parts += _marks(incidents, keys if by == "asn" else None, since, until, base, x)
    parts.append("</svg>")
    return "".join(parts)


def _axis(since: datetime, until: datetime, base: int, x) -> list[str]:
    span = until - since  # ~6 ticks on round times
    tick = next((timedelta(minutes=m) for m in (10, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
                 if span / timedelta(minutes=m) <= 8), timedelta(days=30))
    epoch = datetime(1970, 1, 1)
    t = epoch + -((epoch - since) // tick) * tick
    out = []
    fmt = "%H:%M" if tick < timedelta(days=1) else "%d %b"
    while t <= until:
        if LEFT + 15 <= x(t) <= WIDTH - 20:
            out.append(f"<text x={x(t):.1f} y={base + 14} class=tl-axis text-anchor=middle>{t.strftime(fmt)}</text>")
        t += tick
    return out


def _marks(incidents: list[Incident], asns: list[str] | None, since: datetime, until: datetime, base: int,
           x) -> list[str]:
    """Onset and end of each incident, and each change of technique (once per time)."""
    out = []
    changes: dict[str, str] = {}
    for inc in incidents:
        outage = inc.kind == IncidentKind.OUTAGE
        if outage and asns is not None and not {n.asn for n in inc.networks} & set(asns):
            continue
        for kind, label, at in (("onset", "outage" if outage else "onset", inc.start),
                                ("end", "restored" if outage else "end", inc.end)):
            if not at:
                continue
            t = times.naive(at)
            if since <= t <= until:
                colour = "#263238" if outage else "#b00020"
                # outage marks under the axis, the end a line lower: no overlap with onsets or each other
                y_text = (base + 28 if kind == "onset" else base + 40) if outage else 14
                left = x(t) < WIDTH - 90
                out.append(f"<line x1={x(t):.1f} x2={x(t):.1f} y1=18 y2={base + (20 if outage else 0)} class='tl-{kind}' "
                           f"stroke='{colour}' stroke-width=2 stroke-dasharray='4 2'/>"
                           f"<text x={x(t) + (3 if left else -3):.1f} y={y_text} text-anchor={'start' if left else 'end'} "
                           f"class='tl-mark tl-{kind}-label{' tl-outage' if outage else ''}'>{label} {at[11:16]}</text>")
        if outage:
            continue
        for n in inc.networks:
            steps = [s for s in (n.techniques or []) if s.get("technique") and not s.get("secondary")]
            for a, b in zip(steps, steps[1:]):
                if b.get("start"):
                    changes.setdefault(str(b["start"])[:19], f"{technique_label(a['technique'])} \u2192 "
                                                             f"{technique_label(b['technique'])}")
    for at, label in sorted(changes.items()):
        t = times.naive(at)
        if since <= t <= until:
            left = x(t) < WIDTH - 140
            out.append(f"<line x1={x(t):.1f} x2={x(t):.1f} y1=18 y2={base} class=tl-change-line stroke='#000' "
                       f"stroke-width=1.5 stroke-dasharray='1 2'/><text x={x(t) + (3 if left else -3):.1f} y={base + 54} "
                       f"text-anchor={'start' if left else 'end'} class=tl-change>{escape(label)} {at[11:16]}</text>")
    return out
