"""Outage spans from verdicts: silence per network, and one span per network and event.

The span side of `decision`: `incidents.network_spans` runs these for the incidents
(dashboard, API, `netvigil incidents`) and for `netvigil outages`, so both show the same
outage spans for the same data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from netvigil.analysis.incidents.changes import Span, common_run
from netvigil.analysis.outages.decision import silences
from netvigil.model import times
from netvigil.model.records import Verdict
from netvigil.model.vocabulary import IncidentKind, Technique

if TYPE_CHECKING:
    from netvigil.analysis.outages.signal_rules import OutageRules

_ts = times.epoch  # a round's verdicts share one time: cached, one parse per round


def _times_by_network(direct: list[Verdict], memo: dict | None) -> dict[tuple, list[float]]:
    """Measurement times per (cc, asn), in verdict order. `memo` (kept by the caller, verdicts
    in time order): only what was cut from the front, changed at the end or added is redone."""
    if memo is None or not memo.get("vs"):
        by_net: dict[tuple, list[float]] = defaultdict(list)
        seq = []
        for v in direct:
            key = (v.probe_cc, v.probe_asn)
            by_net[key].append(_ts(v.measurement_start_time))
            seq.append(key)
    else:
        old, by_net, seq = memo["vs"], memo["by_net"], memo["seq"]
        d, k = common_run(old, direct)
        for cut, front in ((Counter(seq[:d]), True), (Counter(seq[d + k:]), False)):
            for key, n in cut.items():
                by_net[key] = by_net[key][n:] if front else by_net[key][:len(by_net[key]) - n]
        seq = seq[d:d + k]
        for v in direct[k:]:
            key = (v.probe_cc, v.probe_asn)
            by_net[key].append(_ts(v.measurement_start_time))
            seq.append(key)
        for key in [key for key, ts in by_net.items() if not ts]:
            del by_net[key]
    if memo is not None:
        memo.update(vs=direct, by_net=by_net, seq=seq)
    # in order of first appearance, as a build from scratch has it (ties keep that order later)
    return {key: list(by_net[key]) for key in dict.fromkeys(seq)}


def silence_spans(verdicts: list[Verdict], memo: dict | None = None, end: float | None = None,
                  rules: OutageRules | None = None) -> list[Span]:
    """The silences of `decision.silences` as outage spans (service "*") of their networks;
    `end` (epoch s, default the newest verdict) is where silence is judged up to."""
    by_net = _times_by_network([v for v in verdicts if v.path == "direct"], memo)
    return [Span(cc, asn, "*", IncidentKind.OUTAGE, iv.onset, iv.end, None,
                 [{"technique": Technique.OUTAGE, "start": iv.onset, "end": iv.end, "rounds": iv.points}], [])
            for cc, asn, iv in silences(by_net, end, rules)]


def merge_in_time(spans: list[Span], gap: float) -> list[list[Span]]:
    """Spans (sorted by start) in groups: a span joins the group when it starts within `gap`
    seconds of the group's end (an open span's group takes every later span)."""
    groups: list[list[Span]] = []
    horizon = None
    for s in spans:
        if groups and (horizon is None or _ts(s.start) <= horizon + gap):
            groups[-1].append(s)
        else:
            groups.append([s])
            horizon = _ts(s.start)
        if groups[-1] and horizon is not None:
            ends = [g.end for g in groups[-1]]
            horizon = None if any(e is None for e in ends) else max(_ts(e) for e in ends)
    return groups


def per_network(outage_spans: list[Span], gap: float) -> list[Span]:
    """One outage span per network and event, whatever the services (or the silence) that
    showed it: the outage spans every command and page shows."""
    by_net: dict[tuple, list[Span]] = defaultdict(list)
    for s in outage_spans:
        by_net[(s.cc, s.asn)].append(s)
    merged = []
    for (cc, asn), net_spans in by_net.items():
        for group in merge_in_time(sorted(net_spans, key=lambda s: s.start), gap):
            first = group[0]
            end = None if any(g.end is None for g in group) else max(g.end for g in group)
            merged.append(Span(cc, asn, "*", IncidentKind.OUTAGE, first.start, end, first.network_name,
                               [{"technique": Technique.OUTAGE, "start": first.start, "end": end, "rounds": 1}],
                               [v for g in group for v in g.verdicts]))
    return merged
