"""Outage or censorship per network from netvigil's own verdicts: `netvigil outages FILE`.

The spans are the incidents' (`incidents.network_spans`: the round context's outage rounds,
silence, one outage span per network; censorship spans per service), so this command, the
dashboard, the API and `netvigil incidents` show the same outage spans for the same data.
Per network: the call (`decision.network_call`), the spans, and the buckets of `step`
seconds each span covers (for scoring against a lab's labels per (network, bucket)).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

import msgspec

from netvigil.analysis.incidents.changes import Span
from netvigil.analysis.outages.decision import network_call
from netvigil.model import times
from netvigil.model.records import Verdict
from netvigil.model.vocabulary import IncidentKind, VerdictClass

if TYPE_CHECKING:
    from netvigil.analysis.outages.signal_rules import OutageRules

SILENCE_RULE = "outage.volume.silence"  # rules/outage.toml [signal.volume]


class SpanTimes(msgspec.Struct):
    """One span as the command prints it: [start, end), end None while ongoing."""

    start: str
    end: str | None
    service: str  # "*" for an outage (the whole network)
    technique: str | None


class NetworkCall(msgspec.Struct):
    """Outage, censorship, both, none or unknown for one network, with its spans and reasons."""

    key: str  # "CC/ASN"
    call: str  # decision.Call
    reasons: list[str]
    outage_spans: list[SpanTimes] = []
    censorship_spans: list[SpanTimes] = []
    rule_ids: list[str] = []
    outage_bucket_starts: list[int] = []  # buckets an outage span covers (epoch s)
    censored_bucket_starts: list[int] = []  # buckets a censorship span covers, outside outages
    rules_version: str = ""


def measured_buckets(verdicts: Iterable[Verdict], step: int) -> dict[tuple[str, str], set[int]]:
    """Buckets with at least one direct-path verdict, per (cc, asn)."""
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for v in verdicts:
        if v.path == "direct":
            ts = int(times.epoch(v.measurement_start_time))
            out[(v.probe_cc, v.probe_asn)].add(ts - ts % step)
    return dict(out)


def _covered(span: Span, step: int, first: int, last: int) -> list[int]:
    """Bucket starts in [first, last] that overlap the span."""
    lo = int(times.epoch(span.start))
    hi = int(times.epoch(span.end)) if span.end else last + step
    start = max(first, lo - lo % step)
    return [b for b in range(start, last + 1, step) if b < hi and b + step > lo]


def network_calls(verdicts: Iterable[Verdict], params: dict[str, float], step: int, *,
                  rules_version: str = "", end: float | None = None,
                  outage_rules: OutageRules | None = None) -> list[NetworkCall]:
    """One NetworkCall per network with direct-path verdicts. `params`: rules.toml
    [incidents]; `end` (epoch s): silence is judged up to it (a network quiet at the end);
    `outage_rules`: the silence detector's (default: rules/outage.toml)."""
    from netvigil.analysis.incidents.builder import network_spans

    verdicts = list(verdicts)
    spans, _ = network_spans(verdicts, params, end=end, outage_rules=outage_rules)
    buckets = measured_buckets(verdicts, step)
    if not buckets:
        return []
    last = max(max(bs) for bs in buckets.values())
    if end is not None:
        last = max(last, int(end) - int(end) % step)
    by_net: dict[tuple[str, str], list[Span]] = defaultdict(list)
    for s in spans:
        by_net[(s.cc, s.asn)].append(s)
    calls = []
    for (cc, asn), bs in sorted(buckets.items()):
        mine = sorted(by_net.get((cc, asn), []), key=lambda s: (s.start, s.service))
        outages = [s for s in mine if s.kind == IncidentKind.OUTAGE]
        censored = [s for s in mine if s.kind == IncidentKind.CENSORSHIP]
        first = min(bs)
        out_at = sorted({b for s in outages for b in _covered(s, step, first, last)})
        cens_at = sorted({b for s in censored for b in _covered(s, step, first, last)} - set(out_at))
        reasons, rule_ids = [], set()
        for s in outages:
            when = f"from {s.start}" + (f" to {s.end}" if s.end else " (ongoing)")
            if s.verdicts:
                ids = sorted({r for v in s.verdicts if v.klass == VerdictClass.OUTAGE for r in v.rule_ids if r.startswith("context.")})
                reasons.append(f"outage {when}: the control targets failed too [{', '.join(ids)}]")
                rule_ids.update(ids)
            else:
                reasons.append(f"outage {when}: silence, far fewer measurements than usual [{SILENCE_RULE}]")
                rule_ids.add(SILENCE_RULE)
        for s in censored:
            when = f"from {s.start}" + (f" to {s.end}" if s.end else " (ongoing)")
            reasons.append(f"censorship of {s.service} {when}: {s.technique} while the controls worked")
        call = network_call(bool(outages), bool(censored), bool(bs))
        if not reasons:
            reasons.append("no outage and no service-specific failure")
        calls.append(NetworkCall(
            key=f"{cc}/{asn}", call=call.value, reasons=reasons,
            outage_spans=[SpanTimes(s.start, s.end, s.service, s.technique) for s in outages],
            censorship_spans=[SpanTimes(s.start, s.end, s.service, s.technique) for s in censored],
            rule_ids=sorted(rule_ids), outage_bucket_starts=out_at, censored_bucket_starts=cens_at,
            rules_version=rules_version))
    return calls
