"""`netvigil outages MEASUREMENTS.jsonl`: outage vs censorship per network from measurements.

Measurements -> verdicts (the analysis area's `verdicts`) -> the incidents' spans
(analysis/outages: the one outage decision, so this and the dashboard agree) -> one call
per network. With a lab run's labels.jsonl the calls are scored per (network, bucket):
outage (`outage`, `outage.partial` labels) and censorship (any other technique).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec
import typer

from netvigil.analysis.outages.scoring import Score, confusion
from netvigil.model.times import parse_utc
from netvigil.model.vocabulary import Technique
from netvigil.errors import IngestError, UsageError

OUTAGE_TECHNIQUES = {Technique.OUTAGE, Technique.OUTAGE_PARTIAL}
# Not scored: the whole ISP slow is degradation, neither outage nor censorship; a blocked
# VPN is invisible on the direct path that fusion judges (circumvention is scored elsewhere).
NEITHER = {Technique.THROTTLED_GENERAL, Technique.VPN_BLOCKED}


def _step_from_run(file: Path) -> int | None:
    run = file.parent / "run.json"
    if not run.is_file():
        return None
    try:
        minutes = json.loads(run.read_text(encoding="utf-8")).get("cadence_minutes")
    except (OSError, ValueError, AttributeError):
        raise IngestError("run.json is not a JSON object", where=str(run)) from None
    return int(float(minutes) * 60) if minutes else None


def _step_from_times(times: list[int]) -> int:
    """The probe cadence: the smallest gap between distinct start times (at least a minute)."""
    gaps = [b - a for a, b in zip(times, times[1:]) if b - a >= 60]
    return max(60, round(min(gaps) / 60) * 60) if gaps else 3600  # whole minutes


def load_lab_labels(path: Path, step: int) -> tuple[set, set]:
    """(outage, censorship) truth as sets of (asn, bucket start)."""
    outage, censored = set(), set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
            asn, technique = row["asn"], row["technique"]
            start, end = parse_utc(row["start"], where=where), parse_utc(row["end"], where=where)
        except (ValueError, KeyError, TypeError) as exc:
            raise IngestError(f"not a label line ({type(exc).__name__}: {exc})", where=where) from None
        if technique in NEITHER:
            continue
        target = outage if technique in OUTAGE_TECHNIQUES else censored
        for b in range(start - start % step, end, step):
            target.add((asn, b))
    return outage, censored


def run_measurements(file: Path, fmt: str, step: int | None, labels: Path | None, rules) -> None:
    from netvigil.analysis.outages.calls import measured_buckets, network_calls
    from netvigil.analysis.rules import load_rules
    from netvigil.analysis.verdicts.engine import verdicts
    from netvigil.ingest.ooni import IngestReport, read_measurements

    if step is not None and step <= 0:
        raise UsageError(f"--step must be positive, not {step}")
    report = IngestReport()
    detection = load_rules()
    vs = list(verdicts(read_measurements([file], report), detection))
    if not vs:
        raise IngestError("no measurements to judge" + (f" ({report.errors[0]})" if report.errors else ""),
                          where=str(file))
    times = sorted({parse_utc(v.measurement_start_time) for v in vs})
    step = step or _step_from_run(file) or _step_from_times(times)
    calls = network_calls(vs, detection.incidents, step, rules_version=detection.version, end=times[-1],
                          outage_rules=rules)
    out = sys.stdout
    if fmt == "jsonl":
        for c in calls:
            out.write(msgspec.json.encode(c).decode() + "\n")
    else:
        typer.echo(f"{file.name}: {report.summary()}; {len(calls)} network(s), buckets of {step} s "
                   f"[rules {detection.version}, outage rules {rules.version}]")
        for c in calls:
            typer.echo(f"  {c.key}: {c.call}")
            for r in c.reasons:
                typer.echo(f"    - {r}")
    labels = labels or (file.parent / "labels.jsonl" if (file.parent / "labels.jsonl").is_file() else None)
    if labels is None:
        return
    truth_out, truth_cens = load_lab_labels(labels, step)
    universe = {(asn, b) for (cc, asn), bs in measured_buckets(vs, step).items() for b in bs}
    pred_out = {(c.key.split("/", 1)[1], b) for c in calls for b in c.outage_bucket_starts}
    pred_cens = {(c.key.split("/", 1)[1], b) for c in calls for b in c.censored_bucket_starts}
    dest = sys.stderr if fmt == "jsonl" else sys.stdout
    for name, pred, truth in (("outage", pred_out, truth_out), ("censorship", pred_cens, truth_cens)):
        sc: Score = confusion(pred & universe, truth & universe, universe)
        print(f"{name} calls per (network, bucket) vs {labels.name}: {sc.line()}", file=dest)
