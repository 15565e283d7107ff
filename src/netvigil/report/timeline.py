"""Per-service timeline as inline SVG: one strip per network, one cell per time bucket.

Drawn on the server from AggregateRow buckets (no chart library per request, so the
dashboard stays fast); the colour of a cell is the dominant failing class when at least
half of its measurements fail; incident onsets and ends are vertical marks.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import escape

from netvigil.model.records import AggregateRow, Incident
from netvigil.report.text import service_name

FMT = "%Y-%m-%d %H:%M:%S"
COLOURS = {"ok": "#2e7d32", "dns": "#c62828", "tcp": "#ad1457", "tls": "#d84315", "http": "#6a1b9a",
           "quic": "#ef6c00", "throttled": "#7b1fa2", "down": "#546e7a", "outage": "#37474f",
           "unknown": "#bdbdbd", "partial": "#f9a825"}
LEFT, CELL_H, WIDTH = 170, 16, 900


def bucket_delta(bucket: str) -> timedelta:
    m = re.match(r"^(\d+)([mhd])$", bucket)
    n, unit = (int(m.group(1)), m.group(2)) if m else (1, "h")
    return timedelta(minutes=n) if unit == "m" else timedelta(hours=n) if unit == "h" else timedelta(days=n)


def dominant(row: AggregateRow) -> str:
    if row.total <= 0:
        return "unknown"
    failing = {k: v for k, v in row.counts.items() if k not in ("ok", "unknown") and v > 0}
    bad = sum(failing.values())
    if bad * 2 >= row.total and failing:
        return max(failing, key=failing.get)
    if bad > 0:
        return "partial"
    return "ok" if row.counts.get("ok", 0) else "unknown"


def timeline_svg(service: str, rows: list[AggregateRow], incidents: list[Incident], since: datetime,
                 until: datetime, bucket: str, names: dict[str, str | None]) -> str:
    step = bucket_delta(bucket)
    n = max(1, int((until - since) / step))
    cw = (WIDTH - LEFT) / n
    asns = sorted({r.asn for r in rows})
    height = 28 + CELL_H * max(1, len(asns)) + 34

    def x(t: datetime) -> float:
        return LEFT + (t - since).total_seconds() / (until - since).total_seconds() * (WIDTH - LEFT)

    parts = [f"<svg class=timeline data-service='{escape(service)}' width={WIDTH} height={height} "
             f"viewBox='0 0 {WIDTH} {height}' role=img aria-label='timeline of {escape(service_name(service))}'>",
             f"<text x=0 y=14 class=tl-title>{escape(service_name(service))}</text>"]
    by_cell = {(r.asn, r.bucket[:19]): r for r in rows}
    for i, asn in enumerate(asns):
        y = 24 + i * CELL_H
        label = names.get(asn) or asn
        parts.append(f"<text x=0 y={y + 12} class=tl-net>{escape(label)[:26]}</text>")
        for j in range(n):
            t = since + j * step
            r = by_cell.get((asn, t.strftime(FMT)))
            if r is None:
                continue
            cls = dominant(r)
            tip = f"{label} {t.strftime('%H:%M')}: {r.total} measurements, " + ", ".join(
                f"{k} {v}" for k, v in sorted(r.counts.items()))
            parts.append(f"<rect x={x(t):.1f} y={y} width={max(cw - 0.5, 0.5):.1f} height={CELL_H - 2} "
                         f"fill='{COLOURS.get(cls, '#bdbdbd')}' class='tl-cell {cls}'><title>{escape(tip)}</title></rect>")
    base = 24 + CELL_H * max(1, len(asns))
    span = until - since  # time axis: ~6 ticks on round times
    tick = next((timedelta(minutes=m) for m in (10, 30, 60, 120, 180, 360, 720) if span / timedelta(minutes=m) <= 8),
                timedelta(days=1))
    epoch = datetime(1970, 1, 1)
    t = epoch + -((epoch - since) // tick) * tick
    while t <= until:
        if LEFT + 15 <= x(t) <= WIDTH - 20:
            parts.append(f"<text x={x(t):.1f} y={base + 14} class=tl-axis text-anchor=middle>"
                         f"{t.strftime('%H:%M')}</text>")
        t += tick
    for inc in incidents:
        outage = inc.kind == "outage"
        if outage and not {n.asn for n in inc.networks} & set(asns):
            continue
        for kind, label, when in (("onset", "outage" if outage else "onset", inc.start),
                                  ("end", "restored" if outage else "end", inc.end)):
            if not when:
                continue
            t = datetime.strptime(when[:19], FMT)
            if since <= t <= until:
                colour = "#37474f" if outage else "#b00020"
                y_text = base + 30 if outage else 14  # outage marks under the axis: no overlap with onsets
                parts.append(f"<line x1={x(t):.1f} x2={x(t):.1f} y1=18 y2={base + (20 if outage else 0)} class='tl-{kind}' "
                             f"stroke='{colour}' stroke-width=2 stroke-dasharray='4 2'/>"
                             f"<text x={x(t) + (3 if x(t) < WIDTH - 90 else -3):.1f} y={y_text} "
                             f"text-anchor={'start' if x(t) < WIDTH - 90 else 'end'} "
                             f"class='tl-mark tl-{kind}-label{' tl-outage' if outage else ''}'>"
                             f"{label} {when[11:16]}</text>")
    parts.append("</svg>")
    return "".join(parts)
