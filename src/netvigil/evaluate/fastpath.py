"""`evaluate --ooni-fastpath PATH`: agreement with OONI's own per-measurement flags.

Two kinds of record (ooni_records.py):
- with the raw measurement (`measurement_meta` answers): netvigil judges it and its class is
  set against OONI's flag (ok / anomaly / confirmed / failure), and its `confirmed` against
  OONI's `confirmed`;
- fastpath table rows alone: there is nothing to judge (no test_keys), so what is compared is
  the one piece of knowledge both share, the block-page fingerprints: every fingerprint OONI
  matched is looked up in netvigil's rule data, and what netvigil would make of that match
  (block page, vague, false positive, not known) is set against OONI's `confirmed`.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

from netvigil.analysis.incidents.changes import CENSORSHIP
from netvigil.evaluate.ooni_records import OONIRecord, read_ooni_records
from netvigil.evaluate.scoring import Binary, Confusion
from netvigil.analysis.rules import RULES_DIR, RuleSet, load_rules
from netvigil.analysis.verdicts.engine import measurement_uid, verdict_stream
from netvigil.ingest.ooni import IngestReport

# what a matched fingerprint means to netvigil, by its scope in the rule data
WEAK_SCOPES = {"vbw": "vague", "fp": "false_positive"}
OONI_FLAGS = ("ok", "failure", "anomaly", "confirmed")
FP_CALLS = ("none", "unknown", "false_positive", "vague", "blockpage")


def cross_table(pairs: Counter, rows: tuple[str, ...] | list[str], cols: list[str]) -> list[str]:
    """Rows OONI's flag, columns netvigil's label (only labels that occur are shown)."""
    rows = [r for r in rows if any(e == r for e, _ in pairs)]
    w = max([len(c) for c in cols] + [6]) + 2
    out = ["OONI \\ netvigil".ljust(16) + "".join(c.rjust(w) for c in cols)]
    for r in rows:
        out.append(r.ljust(16) + "".join(str(pairs.get((r, c), 0) or ".").rjust(w) for c in cols))
    return out


def fingerprint_scopes(rules: RuleSet, directory: Path = RULES_DIR) -> dict[str, str]:
    """Fingerprint name (and its other names) -> scope, as netvigil's rule data has them."""
    scopes: dict[str, str] = {}
    for fp in [*rules.dns_fingerprints.values(), *rules.http_body,
               *(f for fps in rules.http_headers.values() for f in fps)]:
        scopes[fp.id] = fp.scope
    for path in sorted(directory.glob("fingerprints_*.csv")):  # aliases are not kept in RuleSet
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for alias in (row.get("other_names") or "").split(","):
                    if alias.strip() and row.get("name") in scopes:
                        scopes.setdefault(alias.strip(), scopes[row["name"]])
    return scopes


def fingerprint_call(names: list[str], scopes: dict[str, str]) -> str:
    """What netvigil makes of OONI's matches: the strongest over all of them."""
    if not names:
        return "none"
    calls = {("unknown" if n not in scopes else WEAK_SCOPES.get(scopes[n], "blockpage")) for n in names}
    for call in ("blockpage", "vague", "false_positive", "unknown"):
        if call in calls:
            return call
    return "unknown"


@dataclass
class FastpathResult:
    """netvigil's verdicts against OONI's fastpath flags on the same measurements, and what
    could only be compared by table (no raw measurement)."""

    report: IngestReport
    judged: Confusion = field(default_factory=Confusion)  # (OONI flag, netvigil class)
    blocked: Binary = field(default_factory=Binary)  # netvigil censorship class vs OONI anomaly|confirmed
    confirmed: Binary = field(default_factory=Binary)  # netvigil confirmed vs OONI confirmed
    rows: list[dict] = field(default_factory=list)  # the judged measurements
    table_only: Counter = field(default_factory=Counter)  # (test_name, OONI flag) of rows without raw
    fingerprints: Confusion = field(default_factory=Confusion)  # (OONI flag, netvigil's fingerprint call)
    blocking_types: Counter = field(default_factory=Counter)  # OONI blocking_type of anomalies without raw

    def lines(self) -> list[str]:
        out = [self.report.summary()]
        if self.rows:
            out.append(f"judged by netvigil (raw measurement published): {len(self.rows)}")
            out.append(f"{'measurement_uid':60s} {'test':20s} {'OONI':10s} {'netvigil':10s} technique")
            for r in self.rows:
                out.append(f"{r['uid'][:60]:60s} {r['test_name'][:20]:20s} {r['ooni']:10s} {r['class']:10s} "
                           f"{r['technique'] or ''}{'  (confirmed)' if r['confirmed'] else ''}")
            out.append("confusion (rows OONI flag, columns netvigil class):")
            cols = sorted({p for _, p in self.judged.pairs})
            out.extend("  " + line for line in cross_table(self.judged.pairs, OONI_FLAGS, cols))
            out.append(self.blocked.line("netvigil censorship class vs OONI anomaly|confirmed"))
            out.append(self.confirmed.line("netvigil confirmed vs OONI confirmed"))
        if self.table_only:
            n = sum(self.table_only.values())
            out.append(f"fastpath rows without a raw measurement (not judged): {n}")
            flags = Counter()
            for (_, flag), k in self.table_only.items():
                flags[flag] += k
            out.append("  OONI flags: " + ", ".join(f"{f} {k}" for f, k in sorted(flags.items())))
            if self.blocking_types:
                out.append("  OONI blocking_type of their anomalies: "
                           + ", ".join(f"{t} {k}" for t, k in self.blocking_types.most_common()))
            out.append("fingerprints OONI matched, as netvigil's rule data reads them "
                       "(rows OONI flag, columns netvigil's call):")
            cols = [c for c in FP_CALLS if any(p == c for _, p in self.fingerprints.pairs)]
            out.extend("  " + line for line in cross_table(self.fingerprints.pairs, OONI_FLAGS, cols))
        return out

    def as_dict(self) -> dict:
        return {"judged": [[e, p, n] for (e, p), n in sorted(self.judged.pairs.items())],
                "blocked": self.blocked.as_dict(), "confirmed": self.confirmed.as_dict(), "rows": self.rows,
                "table_only": [[t, f, n] for (t, f), n in sorted(self.table_only.items())],
                "fingerprints": [[e, p, n] for (e, p), n in sorted(self.fingerprints.pairs.items())],
                "blocking_types": dict(self.blocking_types),
                "read": self.report.read, "skipped": self.report.skipped}


def evaluate_fastpath(path: Path, rules: RuleSet | None = None) -> FastpathResult:
    rules = rules or load_rules()
    res = FastpathResult(IngestReport())
    scopes = fingerprint_scopes(rules)
    with_raw: list[OONIRecord] = []
    for rec in read_ooni_records(path, res.report):
        if rec.measurement is not None:
            with_raw.append(rec)
            continue
        flag = rec.ooni_class
        res.table_only[(rec.test_name, flag)] += 1
        if rec.anomaly and not rec.confirmed:
            analysis = rec.scores.get("analysis")
            bt = rec.blocking_type or (analysis.get("blocking_type") if isinstance(analysis, dict) else None)
            res.blocking_types[bt if isinstance(bt, str) and bt not in ("", "NULL") else "none given"] += 1
        res.fingerprints.add(flag, fingerprint_call(rec.fingerprints, scopes))
    pending: dict[str, deque[OONIRecord]] = defaultdict(deque)  # verdict uid -> its records, in order
    for r in with_raw:
        pending[measurement_uid(r.measurement)].append(r)
    for _, v in verdict_stream((r.measurement for r in with_raw), rules):
        rec = pending[v.measurement_uid].popleft()
        flag = rec.ooni_class
        res.judged.add(flag, v.klass)
        res.blocked.add(v.klass in CENSORSHIP, flag in ("anomaly", "confirmed"))
        res.confirmed.add(bool(v.confirmed), rec.confirmed)
        res.rows.append({"uid": rec.uid, "test_name": rec.test_name, "probe_cc": rec.probe_cc, "input": rec.input,
                         "ooni": flag, "class": v.klass, "technique": v.technique, "confirmed": bool(v.confirmed),
                         "rule_ids": v.rule_ids})
    return res
