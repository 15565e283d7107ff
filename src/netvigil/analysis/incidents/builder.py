"""Network spans -> incidents: ONE incident per (country, service) event.

Spans of several networks that overlap (or start within `merge_gap_seconds` of each other)
are one incident, with per-network technique spans, how each changed, circumvention
(`works` when measurements of the same service, network and window via a VPN/proxy path
succeed while direct fails; `blocked` when that path fails too), and an evidence bundle.
Outages are grouped per (country, network set) with service "*".
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from netvigil.analysis.incidents.changes import Span, common_prefix, detect_spans
from netvigil.analysis.outages.spans import _times_by_network, per_network, silence_spans  # noqa: F401 (re-exported)
from netvigil.analysis.outages.spans import merge_in_time as _merge
from netvigil.model import times
from netvigil.model.records import Evidence, Incident, NetworkSpan, Verdict
from netvigil.model.vocabulary import Circumvention, IncidentKind, VerdictClass

if TYPE_CHECKING:
    from netvigil.analysis.outages.signal_rules import OutageRules

MAX_SAMPLE_UIDS = 20

_ts = times.epoch  # a round's verdicts share one time: cached, one parse per round


class _SeriesSpans(NamedTuple):
    """What one series gave last time (the `cache` of spans_from_verdicts)."""

    verdicts: list[Verdict]
    spans: list[Span]
    memo: dict  # detect_spans' per-round memo


def spans_from_verdicts(verdicts: Iterable[Verdict], params: dict[str, float],
                        cache: dict | None = None) -> tuple[list[Span], dict]:
    """Direct-path verdicts -> spans per (cc, asn, service); other paths are kept aside.
    `cache` (kept by the caller between calls): a series whose verdicts are the very same
    objects as last time gets last time's spans (the live refresh recomputes only the series
    that received data)."""
    series: dict[tuple, list[Verdict]] = defaultdict(list)
    circ: dict[tuple, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        if not v.service:
            continue
        if v.path != "direct":
            circ[(v.probe_cc, v.probe_asn, v.service)].append(v)
            continue
        series[(v.probe_cc, v.probe_asn, v.service)].append(v)
    for vs in series.values():
        vs.sort(key=lambda v: v.measurement_start_time)
    return _series_spans(series, params, cache), circ


def spans_from_series(cc: str, grouped: dict[tuple, list[Verdict]], params: dict[str, float],
                      cache: dict | None = None) -> tuple[list[Span], dict]:
    """spans_from_verdicts of one country's verdicts already grouped by the live window
    (window.CountryWindow.series: (direct?, asn, service) -> verdicts in time order, in the
    order each series first comes): the same spans, without a pass over the whole window and
    a sort of each series on every refresh."""
    series: dict[tuple, list[Verdict]] = {}
    circ: dict[tuple, list[Verdict]] = {}
    for (direct, asn, service), vs in grouped.items():
        (series if direct else circ)[(cc, asn, service)] = vs
    return _series_spans(series, params, cache), circ


def _series_spans(series: dict[tuple, list[Verdict]], params: dict[str, float], cache: dict | None) -> list[Span]:
    spans: list[Span] = []
    fresh_cache = {}
    for key, vs in series.items():
        cc, asn, service = key
        hit = cache.get(key) if cache is not None else None
        memo = hit.memo if hit is not None else {}
        if hit is not None and len(hit.verdicts) == len(vs) and common_prefix(hit.verdicts, vs) == len(vs):
            found = hit.spans
        else:  # (unchanged rounds of the series come from `memo`)
            # control targets only ever tell of outages; they are never "censored" services
            found = [s for s in detect_spans(cc, asn, service, vs, params, memo) if service != "control" or s.kind == IncidentKind.OUTAGE]
        fresh_cache[key] = _SeriesSpans(vs, found, memo)
        spans.extend(found)
    if cache is not None:
        cache.clear()
        cache.update(fresh_cache)
    return spans


def _circumvention(span: Span, circ: dict) -> str:
    vs = circ.get((span.cc, span.asn, span.service), [])
    lo, hi = span.start, span.end or "9999"
    inside = [v for v in vs if lo <= v.measurement_start_time[:19] < hi]
    if not inside:
        return Circumvention.UNKNOWN
    latest = max(v.measurement_start_time for v in inside)
    last_round = [v for v in inside if v.measurement_start_time == latest]
    return Circumvention.WORKS if any(v.klass == VerdictClass.OK for v in last_round) else Circumvention.BLOCKED


def network_spans(verdicts: list[Verdict], params: dict[str, float], cache: dict | None = None,
                  end: float | None = None, outage_rules: OutageRules | None = None,
                  grouped: tuple[str, dict] | None = None) -> tuple[list[Span], dict]:
    """Censorship spans per (network, service) and outage spans per network (the one
    outage decision, analysis/outages), and the other paths' verdicts: what the incidents and
    `netvigil outages` both show. `end`: silence is judged up to it (default: newest verdict);
    `outage_rules`: the silence detector's (default: rules/outage.toml); `grouped`: (country,
    its VERDICTS by series, window.CountryWindow.series), so they are not grouped again."""
    series_cache = cache.setdefault("series", {}) if cache is not None else None
    if grouped is not None:
        spans, circ = spans_from_series(grouped[0], grouped[1], params, series_cache)
    else:
        spans, circ = spans_from_verdicts(verdicts, params, series_cache)
    spans += silence_spans(verdicts, cache.setdefault("silence", {}) if cache is not None else None, end,
                           outage_rules)
    outages = per_network([s for s in spans if s.kind == IncidentKind.OUTAGE], params["merge_gap_seconds"])
    return [s for s in spans if s.kind == IncidentKind.CENSORSHIP] + outages, circ


def build_incidents(verdicts: Iterable[Verdict], params: dict[str, float], rules_version: str,
                    cache: dict | None = None, grouped: tuple[str, dict] | None = None) -> list[Incident]:
    """`grouped`: (country, VERDICTS by series) when the caller holds them so (the live refresh)."""
    verdicts = list(verdicts)
    spans, circ = network_spans(verdicts, params, cache, grouped=grouped)
    groups: dict[tuple, list[Span]] = defaultdict(list)
    for s in spans:
        groups[(s.cc, s.service, s.kind)].append(s)
    incidents: list[Incident] = []
    for (cc, service, kind), kind_spans in groups.items():
        for group in _merge(sorted(kind_spans, key=lambda s: s.start), params["merge_gap_seconds"]):
            incidents.append(_incident(cc, service, kind, group, circ, rules_version))
    incidents.sort(key=lambda i: (i.start, i.country, i.service))
    return incidents


def evidence_sample(verdicts: list[Verdict], k: int) -> list[str]:
    """Up to k measurement uids covering every (network, technique) phase of an incident:
    taken in turn from each phase, spread over its time (first, last, then between), so a
    reader finds evidence for the throttling at 09:00 and for the resets from 12:00 alike."""
    phases: dict[tuple[str, str], list[str]] = defaultdict(list)
    for v in sorted(verdicts, key=lambda v: (v.measurement_start_time, v.measurement_uid)):
        uids = phases[(v.probe_asn, v.technique or v.klass)]
        if v.measurement_uid not in uids:
            uids.append(v.measurement_uid)
    orders = []
    for key in sorted(phases):
        uids = phases[key]
        order, seen = [], set()
        for i in _spread(len(uids)):
            if uids[i] not in seen:
                seen.add(uids[i])
                order.append(uids[i])
        orders.append(order)
    out: list[str] = []
    chosen: set[str] = set()
    for depth in range(max((len(o) for o in orders), default=0)):
        for order in orders:
            if depth < len(order) and order[depth] not in chosen and len(out) < k:
                chosen.add(order[depth])
                out.append(order[depth])
    return sorted(out)


def _spread(n: int) -> list[int]:
    """Indexes 0..n-1 ordered first, last, middle, quarters...: any prefix spans the range."""
    if n <= 0:
        return []
    order, seen = [], set()
    parts = 1
    while len(order) < n:
        for j in range(parts + 1):
            i = round(j * (n - 1) / parts)
            if i not in seen:
                seen.add(i)
                order.append(i)
        parts *= 2
    return order


def _incident(cc: str, service: str, kind: str, group: list[Span], circ: dict, rules_version: str) -> Incident:
    start = min(s.start for s in group)
    end = None if any(s.end is None for s in group) else max(s.end for s in group)
    ident = hashlib.blake2b(f"{cc}|{service}|{kind}|{start}".encode(), digest_size=8).hexdigest()
    networks = []
    by_asn: dict[str, list[Span]] = defaultdict(list)
    for s in group:
        by_asn[s.asn].append(s)
    for asn, asn_spans in sorted(by_asn.items()):
        for s in asn_spans:
            networks.append(NetworkSpan(
                asn=asn, technique=s.technique, start=s.start, end=s.end, network_name=s.network_name,
                techniques=[{"technique": g["technique"], "start": g["start"], "end": g["end"]} for g in s.segments],
                circumvention=_circumvention(s, circ) if kind == IncidentKind.CENSORSHIP else Circumvention.UNKNOWN,
            ))
    verdicts = [v for s in group for v in s.verdicts]
    uids = sorted({v.measurement_uid for v in verdicts})
    vantages = {(v.probe_asn, v.probe_network_name) for v in verdicts}
    if kind == IncidentKind.CENSORSHIP:
        states = [n.circumvention for n in networks]
        circumvention = (Circumvention.WORKS if Circumvention.WORKS in states
                         else Circumvention.BLOCKED if Circumvention.BLOCKED in states else Circumvention.UNKNOWN)
    else:
        circumvention = Circumvention.UNKNOWN
    techniques = sorted({t["technique"] for n in networks for t in n.techniques})
    return Incident(
        id=ident, country=cc, service=service, kind=kind, start=start, end=end, networks=networks,
        circumvention=circumvention,
        evidence=Evidence(measurement_uids=evidence_sample(verdicts, MAX_SAMPLE_UIDS), vantage_networks=len(vantages), rules_version=rules_version,
                          measurement_count=len(uids)),
        techniques=techniques,
    )
