"""Outage signals from netvigil's own verdicts: volume, control reachability, and fusion.

For the analysis side: give it the verdicts of a period (model/records.py `Verdict`), get per
network (country, ASN) the three target-independent inputs fusion needs -- measurements per
bucket (silence), control-target success share per bucket, and per-bucket service-vs-control
counts -- and the outage / censorship / both call with reasons. Pure: verdicts in, calls out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import msgspec

from netvigil.analysis.outage_signals import control_reachability_outages, fuse, volume_outages
from netvigil.analysis.signals_rules import OutageRules, load_rules
from netvigil.model.signals import CensorshipBucket, FusionCall, OutageInterval, parse_utc
from netvigil.model.records import AggregateRow, Verdict

CONTROL = "control"  # the catalogue's control service (docs/design.md section 15)
OK_CLASSES = {"ok"}  # a service counts as working only when ok (throttling is a technique)
REACHABLE_CLASSES = {"ok", "throttled"}  # a control that is merely slow is still reachable


class NetworkSignals(msgspec.Struct):
    country: str
    asn: str
    step: int
    volume: dict[int, int]  # bucket -> distinct measurements
    control: list[tuple[int, int, int]]  # (bucket, ok, total) of control verdicts
    evidence: list[CensorshipBucket]
    intervals: list[OutageInterval] = []


def network_signals(verdicts: Iterable[Verdict], step: int) -> dict[tuple[str, str], NetworkSignals]:
    """Bucket verdicts per (probe_cc, probe_asn); only the direct path counts (a VPN path
    says nothing about the network's own reachability)."""
    seen: dict[tuple[str, str], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    counts: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))
    for v in verdicts:
        if v.path != "direct":
            continue
        ts = parse_utc(v.measurement_start_time, where=f"verdict {v.measurement_uid}")
        b = ts - ts % step
        net = (v.probe_cc, v.probe_asn)
        seen[net][b].add(v.measurement_uid)
        row = counts[net][b]
        if v.service == CONTROL:
            row[2] += v.klass in REACHABLE_CLASSES
            row[3] += 1
        elif v.klass != "unknown":
            row[0] += v.klass in OK_CLASSES
            row[1] += 1
    out = {}
    for net, by_bucket in seen.items():
        rows = counts[net]
        out[net] = NetworkSignals(
            country=net[0], asn=net[1], step=step,
            volume={b: len(uids) for b, uids in by_bucket.items()},
            control=[(b, r[2], r[3]) for b, r in sorted(rows.items()) if r[3]],
            evidence=[CensorshipBucket(b, r[0], r[1], r[2], r[3]) for b, r in sorted(rows.items())],
        )
    return out


def network_signals_from_aggregates(rows: Iterable[AggregateRow], step: int) -> dict[tuple[str, str], NetworkSignals]:
    """The same inputs from the store's aggregates (counts per country, ASN, service, bucket)."""
    acc: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))
    for r in rows:
        ts = parse_utc(r.bucket, where=f"aggregate {r.country}/{r.asn}/{r.service}")
        row = acc[(r.country, r.asn)][ts - ts % step]
        row[4] += r.total
        if r.service == CONTROL:
            row[2] += sum(n for k, n in r.counts.items() if k in REACHABLE_CLASSES)
            row[3] += r.total
        else:
            row[0] += sum(n for k, n in r.counts.items() if k in OK_CLASSES)
            row[1] += r.total - r.counts.get("unknown", 0)
    return {net: NetworkSignals(
        country=net[0], asn=net[1], step=step,
        volume={b: r[4] for b, r in by_bucket.items()},
        control=[(b, r[2], r[3]) for b, r in sorted(by_bucket.items()) if r[3]],
        evidence=[CensorshipBucket(b, r[0], r[1], r[2], r[3]) for b, r in sorted(by_bucket.items())],
    ) for net, by_bucket in acc.items()}


def outage_calls_from_aggregates(rows: Iterable[AggregateRow], step: int, *, start: int | None = None,
                                 end: int | None = None,
                                 rules: OutageRules | None = None) -> list[FusionCall]:
    """As outage_calls, from AggregateRow counts (step = the aggregates' bucket length)."""
    return _calls(network_signals_from_aggregates(rows, step), step, start, end, rules)


def outage_calls(verdicts: Iterable[Verdict], step: int, *, start: int | None = None,
                 end: int | None = None, rules: OutageRules | None = None) -> list[FusionCall]:
    """One FusionCall per network: outage / censorship / both / none, with reasons.

    `start`/`end` (epoch s) bound the period: buckets in it without any measurement from a
    network count as silence (a network that went quiet at the end is still seen).
    """
    return _calls(network_signals(verdicts, step), step, start, end, rules)


def _calls(signals: dict[tuple[str, str], NetworkSignals], step: int, start: int | None,
           end: int | None, rules: OutageRules | None) -> list[FusionCall]:
    rules = rules or load_rules()
    calls = []
    for (cc, asn), sig in sorted(signals.items()):
        key = f"{cc}/{asn}"
        ivs = volume_outages(key, sig.volume, step, start=start, end=end, rules=rules, country=cc,
                             signal="probe_volume")
        ivs += control_reachability_outages(key, sig.control, step, rules=rules, country=cc)
        sig.intervals = ivs
        calls.append(fuse(key, ivs, sig.evidence, step=step, rules=rules))
    return calls
