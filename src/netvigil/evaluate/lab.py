"""`evaluate --lab DIR`: a lab run (measurements.jsonl + labels.jsonl + run.json, docs/design.md section 15).

Scores every direct-path service verdict against the technique labelled for its network and
window (no label = ok), VPN-path verdicts against `vpn.blocked`, incident onset and end in
probe rounds against the labelled switch-on/off, measured throttling rates against the
configured ones, and the false-positive rate of throttling on unthrottled rounds.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from netvigil.evaluate.scoring import Binary, Confusion
from netvigil.analysis.incidents.builder import build_incidents
from netvigil.analysis.rules import RuleSet, load_rules
from netvigil.analysis.verdicts.engine import verdict_stream
from netvigil.errors import IngestError, UsageError
from netvigil.ingest.ooni import IngestReport, read_measurements
from netvigil.model.times import epoch
from netvigil.model.vocabulary import Circumvention, Technique, VerdictClass


def klass(technique: str) -> str:
    return technique.split(".")[0] if technique != VerdictClass.OK else VerdictClass.OK


def read_labels(path: Path) -> list[dict]:
    if not path.exists():
        raise UsageError("no labels.jsonl in the lab run directory", where=str(path))
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            lab = json.loads(line)
            epoch(lab["start"]), epoch(lab["end"])
            lab["technique"], lab["asn"]
        except (ValueError, KeyError, TypeError) as exc:
            raise IngestError(f"bad label: {exc}", where=f"{path}:{n}") from None
        out.append(lab)
    return out


@dataclass
class LabResult:
    """A lab run scored against its ground truth (labels.jsonl): per-unit confusion, the VPN,
    throttling and outage calls, onsets, rates and circumvention."""

    report: IngestReport
    confusion: Confusion = field(default_factory=Confusion)
    vpn: Binary = field(default_factory=Binary)  # predicted "vpn path fails" vs labelled vpn.blocked
    throttle_fp: Binary = field(default_factory=Binary)
    outage: Binary = field(default_factory=Binary)
    onsets: list[dict] = field(default_factory=list)
    rates: list[dict] = field(default_factory=list)
    incidents: int = 0
    events: int = 0
    circumvention: list[dict] = field(default_factory=list)
    vpn_isps: set = field(default_factory=set)
    cadence: float = 0.0

    def lines(self) -> list[str]:
        out = [self.report.summary()]
        total = sum(self.confusion.pairs.values())
        right = sum(n for (e, p), n in self.confusion.pairs.items() if e == p)
        out.append(f"(network, service, round) units: {right}/{total} technique correct")
        for lab, b in self.confusion.per_label().items():
            out.append("  " + b.line(lab))
        out.append("confusion (rows expected, columns netvigil):")
        out.extend("  " + line for line in self.confusion.table().splitlines())
        out.append(self.outage.line("outage (class)"))
        out.append(self.throttle_fp.line("throttling") + f" false-positive rate={self.throttle_fp.fpr:.4f}")
        out.append(self.vpn.line("vpn path blocked"))
        ok_on = sum(1 for o in self.onsets if o["onset_rounds"] is not None and abs(o["onset_rounds"]) <= 2)
        ok_end = sum(1 for o in self.onsets if o["end_rounds"] is not None and abs(o["end_rounds"]) <= 2)
        out.append(f"labelled events: {self.events}; incidents: {self.incidents}; onset within 2 rounds: {ok_on}/{len(self.onsets)}; "
                   f"end within 2 rounds: {ok_end}/{len(self.onsets)}")
        for o in self.onsets:
            out.append(f"  {o['asn']} {o['service']} {o['technique']}: onset {o['onset_rounds']} rounds, end {o['end_rounds']} rounds, "
                       f"incident technique {o['got']}")
        for r in self.rates:
            out.append(f"  throttling {r['asn']} {r['service']}: configured {r['configured_bps']:.0f} bit/s, measured "
                       f"{r['measured_bps']:.0f} bit/s ({100 * r['error']:+.1f}%)")
        circ = Binary()
        for c in self.circumvention:
            if c["expected"] != Circumvention.UNKNOWN:
                circ.add(c["got"] == Circumvention.WORKS, c["expected"] == Circumvention.WORKS)
            out.append(f"  circumvention {c['asn']} {c['service']} from {c['start']}: {c['got']} (expected {c['expected']})")
        out.append(circ.line("circumvention works"))
        return out


def evaluate_lab(directory: Path, rules: RuleSet | None = None) -> LabResult:
    rules = rules or load_rules()
    found = [directory / n for n in ("measurements.jsonl", "measurements.jsonl.zst", "measurements.jsonl.gz")]
    found = [p for p in found if p.exists()]
    if not found:
        raise UsageError("no measurements.jsonl (not a lab run directory)", where=str(directory))
    labels = read_labels(directory / "labels.jsonl")
    cadence = 60.0
    vpn_isps: set = set()
    if (directory / "run.json").exists():
        try:
            run = json.loads((directory / "run.json").read_text())
            cadence = float(run.get("cadence_minutes", 1)) * 60
            vpn_isps = {i["asn"] for i in run.get("isps") or [] if isinstance(i, dict) and i.get("vpn")}
        except (ValueError, TypeError, AttributeError, KeyError):
            raise IngestError("bad run.json", where=str(directory / "run.json")) from None
    report = IngestReport()
    verdicts = [v for _, v in verdict_stream(read_measurements(found[:1], report), rules)]
    res = LabResult(report, cadence=cadence, vpn_isps=vpn_isps)
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    vpn_blocked: dict[str, list[dict]] = defaultdict(list)
    for lab in labels:
        if lab["technique"] == Technique.VPN_BLOCKED:
            vpn_blocked[lab["asn"]].append(lab)
        else:
            by_key[(lab["asn"], lab.get("service"))].append(lab)

    def active(labs, t):
        return [lab for lab in labs if epoch(lab["start"]) <= t < epoch(lab["end"])]

    rounds: dict[tuple, list] = defaultdict(list)  # one score per (network, service, round)
    for v in verdicts:
        t = epoch(v.measurement_start_time)
        if v.path != "direct":
            res.vpn.add(v.klass not in (VerdictClass.OK,), bool(active(vpn_blocked.get(v.probe_asn, []), t)))
            continue
        if v.service is not None:
            rounds[(v.probe_asn, v.service, v.measurement_start_time)].append(v)
    for (asn, service, when), vs in sorted(rounds.items()):
        labs = active(by_key.get((asn, service), []), epoch(when))
        expected = sorted({lab["technique"] for lab in labs}) or [VerdictClass.OK]
        bad = Counter(v.technique or v.klass for v in vs if v.klass != VerdictClass.OK)
        got = bad.most_common(1)[0][0] if bad else VerdictClass.OK
        primary = got if got in expected else expected[0]
        res.confusion.add(primary, got)
        res.outage.add(klass(got) == VerdictClass.OUTAGE, klass(primary) == VerdictClass.OUTAGE)
        if service != "control":
            res.throttle_fp.add(klass(got) == VerdictClass.THROTTLED, klass(primary) == VerdictClass.THROTTLED)
    incidents = build_incidents(verdicts, rules.incidents, rules.version)
    res.incidents = len(incidents)
    _onsets(res, labels, incidents, verdicts, cadence)
    return res


def _events(labels: list[dict]) -> list[dict]:
    """Label windows of one (country, network, service) that touch or overlap are one event
    (e.g. throttling that turned into resets); QUIC-only labels ride along with others."""
    by: dict[tuple, list[dict]] = defaultdict(list)
    for lab in labels:
        if lab["technique"] == Technique.VPN_BLOCKED or lab.get("service") in (None, "control"):
            continue
        svc = "*" if lab["technique"] in (Technique.OUTAGE, Technique.OUTAGE_PARTIAL) else lab["service"]
        by[(lab["country"], lab["asn"], svc)].append(lab)
    events = []
    for (cc, asn, svc), labs in by.items():
        labs = sorted({(lab["start"], lab["end"], lab["technique"]): lab for lab in labs}.values(), key=lambda x: x["start"])
        for lab in labs:
            ev = events[-1] if events and events[-1]["key"] == (cc, asn, svc) else None
            if ev is not None and epoch(lab["start"]) <= epoch(ev["end"]):
                ev["end"] = max(ev["end"], lab["end"], key=epoch)
                ev["techniques"].append(lab)
            else:
                events.append({"key": (cc, asn, svc), "start": lab["start"], "end": lab["end"], "techniques": [lab]})
    return events


def _onsets(res: LabResult, labels: list[dict], incidents, verdicts, cadence: float) -> None:
    events = _events(labels)
    res.events = len(events)
    last_seen: dict[str, str] = {}
    for v in verdicts:
        last_seen[v.probe_asn] = max(last_seen.get(v.probe_asn, ""), v.measurement_start_time)
    for ev in events:
        cc, asn, svc = ev["key"]
        start, end = ev["start"], ev["end"]
        main = [lab for lab in ev["techniques"] if lab["technique"] != Technique.QUIC_BLOCKED] or ev["techniques"]
        start = min((lab["start"] for lab in main), key=epoch)
        spans = [(i, n) for i in incidents if i.country == cc and i.service == svc for n in i.networks if n.asn == asn]
        overlapping = [(i, n) for i, n in spans if epoch(n.start) < epoch(end) and (n.end is None or epoch(n.end) > epoch(start))]
        row = {"asn": asn, "service": svc, "technique": "+".join(dict.fromkeys(lab["technique"] for lab in main)),
               "onset_rounds": None, "end_rounds": None, "got": None}
        if overlapping:
            i, n = min(overlapping, key=lambda x: abs(epoch(x[1].start) - epoch(start)))
            row["onset_rounds"] = round((epoch(n.start) - epoch(start)) / cadence, 2)
            if n.end is not None:
                row["end_rounds"] = round((epoch(n.end) - epoch(end)) / cadence, 2)
            elif epoch(end) > epoch(last_seen.get(asn, end)):
                row["end_rounds"] = 0.0  # still in force when the run ended
            row["got"] = "+".join(t["technique"] for t in n.techniques) or n.technique
            if svc != "*":
                # the incident reports the latest state: the VPN is blocked if a vpn.blocked label
                # is in force at the span's last round, else it works where the ISP has a VPN path
                last = n.end or last_seen.get(asn, end)
                vpn_labs = [lab for lab in labels if lab["technique"] == Technique.VPN_BLOCKED and lab["asn"] == asn]
                at_last = [lab for lab in vpn_labs if epoch(lab["start"]) <= epoch(last) <= epoch(lab["end"])]
                expected = (Circumvention.BLOCKED if at_last
                            else Circumvention.WORKS if asn in res.vpn_isps else Circumvention.UNKNOWN)
                res.circumvention.append({"service": svc, "asn": asn, "start": start, "got": n.circumvention,
                                          "expected": expected})
        res.onsets.append(row)
        for lab in ev["techniques"]:
            if lab["technique"] != Technique.THROTTLED_TARGETED or not lab.get("rate_bps"):
                continue
            rates = [v.rate_bps for v in verdicts if v.probe_asn == asn and v.service == svc and v.rate_bps
                     and v.klass == VerdictClass.THROTTLED and epoch(lab["start"]) <= epoch(v.measurement_start_time) < epoch(lab["end"])]
            if rates:
                m = statistics.median(rates)
                res.rates.append({"asn": asn, "service": svc, "configured_bps": float(lab["rate_bps"]), "measured_bps": m,
                                  "error": (m - lab["rate_bps"]) / lab["rate_bps"]})
