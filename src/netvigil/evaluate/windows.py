"""`evaluate --ooni-observations FILE --windows WINDOWS.csv` (docs/design.md section 7).

WINDOWS.csv has `start_utc,end_utc` and optionally `probe_asn`. Rows without `probe_asn`:
country-level truth, scored per (country, hour), an hour blocked when any network is. Rows
with `probe_asn`: per-network truth, scored per (network, hour) over every network in the
data (a network without rows never blocks). Only hours with measurements are scored.
Predicted: an hour is blocked when at least `open_share` of its measurements are blocked.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from netvigil.analysis.incidents.changes import CENSORSHIP
from netvigil.evaluate.scoring import Binary
from netvigil.analysis.incidents.builder import build_incidents
from netvigil.analysis.rules import RuleSet, load_rules
from netvigil.errors import IngestError, UsageError
from netvigil.analysis.verdicts.observations_csv import asn_label, read_observation_verdicts
from netvigil.ingest.ooni import IngestReport


def _parse(text: str, where: str) -> datetime:
    t = text.strip().replace("Z", "+00:00").replace(" ", "T")
    try:
        d = datetime.fromisoformat(t)
    except ValueError:
        raise IngestError(f"bad time {text!r}", where=where) from None
    return d.astimezone(timezone.utc) if d.tzinfo else d.replace(tzinfo=timezone.utc)


def read_windows(path: Path) -> tuple[set, bool]:
    """The blocked hours: {(asn or None, 'YYYY-MM-DD HH')}, and whether rows are per network."""
    if not path.exists():
        raise UsageError("no such file", where=str(path))
    hours: set = set()
    per_network = None
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if "start_utc" not in cols or "end_utc" not in cols:
            raise IngestError("windows CSV needs columns start_utc,end_utc[,probe_asn]", where=f"{path}:1")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            start, end = _parse(row["start_utc"] or "", where), _parse(row["end_utc"] or "", where)
            if end <= start:
                raise IngestError("end_utc is not after start_utc", where=where)
            asn = (row.get("probe_asn") or "").strip()
            asn = asn_label(asn) if asn else None
            if per_network is None:
                per_network = asn is not None
            elif per_network != (asn is not None):
                raise IngestError("mixes rows with and without probe_asn", where=where)
            t = start.replace(minute=0, second=0, microsecond=0)
            while t < end:
                hours.add((asn, t.strftime("%Y-%m-%d %H")))
                t += timedelta(hours=1)
    if per_network is None:
        raise IngestError("no windows in file", where=str(path))
    return hours, per_network


@dataclass
class WindowsResult:
    score: Binary
    per_network: bool
    units: int
    report: IngestReport
    by_network: dict[str, Binary] = field(default_factory=dict)
    incidents: int = 0
    incidents_outside_days: int = 0
    disagreements: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        unit = "(network, hour)" if self.per_network else "(country, hour)"
        out = [self.report.summary(), f"scored {self.units} {unit} units with measurements",
               self.score.line(f"blocked {unit}")]
        for asn, b in sorted(self.by_network.items(), key=lambda kv: -(kv[1].tp + kv[1].fn + kv[1].fp)):
            if b.tp + b.fp + b.fn:
                out.append("  " + b.line(asn))
        out.append(f"incidents: {self.incidents}, of which outside the windows' days: {self.incidents_outside_days}")
        out.extend(self.disagreements)
        return out


def evaluate_windows(observations: Path, windows: Path, rules: RuleSet | None = None) -> WindowsResult:
    rules = rules or load_rules()
    truth, per_network = read_windows(windows)
    report = IngestReport()
    cells: dict[tuple, list[bool]] = defaultdict(list)
    verdicts = []
    for v in read_observation_verdicts(observations, report, rules):
        hour = v.measurement_start_time[:13]
        key = (v.probe_asn if per_network else v.probe_cc, hour)
        cells[key].append(v.klass in CENSORSHIP)
        verdicts.append(v)
    score = Binary()
    by_net: dict[str, Binary] = defaultdict(Binary)
    share = rules.incidents["open_share"]
    if per_network:
        for (asn, hour), flags in cells.items():
            pred = sum(flags) / len(flags) >= share
            act = (asn, hour) in truth
            score.add(pred, act)
            by_net[asn].add(pred, act)
    else:
        hours: dict[tuple, list[bool]] = defaultdict(list)
        for v in verdicts:
            hours[(v.probe_cc, v.measurement_start_time[:13])].append(v.klass in CENSORSHIP)
        per_net: dict[tuple, list[bool]] = defaultdict(list)
        for v in verdicts:
            per_net[(v.probe_cc, v.probe_asn, v.measurement_start_time[:13])].append(v.klass in CENSORSHIP)
        country_pred: dict[tuple, bool] = defaultdict(bool)
        for (cc, asn, hour), flags in per_net.items():
            country_pred[(cc, hour)] |= sum(flags) / len(flags) >= share
        for (cc, hour) in hours:
            score.add(country_pred[(cc, hour)], (None, hour) in truth)
    days = {h[:10] for _, h in truth}
    incidents = build_incidents(verdicts, rules.incidents, rules.version)
    outside = [i for i in incidents if i.start[:10] not in days or (i.end and i.end[:10] not in days and i.end[:10] > max(days))]
    res = WindowsResult(score, per_network, len(cells) if per_network else score.tp + score.fp + score.fn + score.tn,
                        report, dict(by_net), len(incidents), len(outside))
    return res
