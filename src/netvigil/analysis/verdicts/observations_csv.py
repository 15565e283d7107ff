"""OONI observation CSVs (one row per DNS/TCP/TLS/HTTP observation, as ooni/data and the
OONI notebooks export them) -> per-measurement verdicts.

A separate, named input with its own rules (rule ids `csv.*`, docs/rules.md), not the
verdict engine (engine.py): the rows carry each step's failure string but not the
measurement (no answers, certificates, bodies or throughput), so fingerprints, controls and
the round context cannot apply. Rows of one measurement are consecutive (as exported); a
measurement's endpoint is its IP (or hostname); an endpoint fails when any of its rows carries
a failure. The measurement is blocked when at least `open_share` of its endpoints fail, with
the technique of the commonest failing step; the confidence scales with the failing share
as the engine's does (rules.toml [factors]). Each endpoint's technique is listed in the
verdict's `endpoints`. Bad rows (missing columns, bad time) are reported with file:line and
skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from netvigil.analysis.rules import RuleSet, load_rules
from netvigil.errors import IngestError, UsageError
from netvigil.ingest.ooni import IngestReport
from netvigil.model import times
from netvigil.model.records import Verdict
from netvigil.model.vocabulary import VerdictClass

MAX_OPEN = 5000  # measurements kept open while their rows are interleaved
REQUIRED = ("measurement_uid", "probe_asn", "measurement_start_time")
STEPS = (("dns", "dns_failure"), ("tcp", "tcp_failure"), ("tls", "tls_failure"), ("http", "http_failure"))
USED = REQUIRED + tuple(col for _, col in STEPS) + (  # every column a verdict reads
    "ip", "hostname", "failure_class", "failure_str", "test_name", "input", "probe_cc", "probe_as_org_name")
SERVICE_BY_TEST = {"telegram": "telegram", "whatsapp": "whatsapp", "signal": "signal", "facebook_messenger": "messenger", "tor": "tor"}


def _open_text(path: Path) -> io.TextIOBase:
    if not path.exists():
        raise UsageError("no such file", where=str(path))
    raw = path.open("rb")
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8", errors="replace", newline="")
    if path.name.endswith((".zst", ".zstd")):
        from netvigil.ingest.ooni import ZstdFrames

        return io.TextIOWrapper(io.BufferedReader(ZstdFrames(raw)), encoding="utf-8", errors="replace", newline="")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def _time(text: str) -> str | None:
    """The cell's time in the stored form, None when it is not one (model/times.py reads it)."""
    t = times.stored(text.strip())
    return t if times.TIME_RE.match(t) else None


def asn_label(text: str) -> str:
    """'AS1234' from a CSV cell: '1234', '1234.0' (a float column) or 'AS1234'."""
    t = text.strip().split(".")[0]
    return t if t.upper().startswith("AS") else f"AS{t}"


def read_observation_verdicts(path: str | Path, report: IngestReport | None = None, rules: RuleSet | None = None) -> Iterator[Verdict]:
    path = Path(path)
    rules = rules or load_rules()
    report = report if report is not None else IngestReport()
    report.files += 1
    share = rules.incidents["open_share"]
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None) or []
        except (OSError, EOFError, csv.Error) as exc:
            raise IngestError(f"cannot read the header: {exc}", where=str(path)) from None
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise IngestError(f"not an OONI observation CSV: missing column(s) {', '.join(missing)}", where=f"{path}:1")
        # each row as a dict of the columns read here only (a row has ~50): a short row's
        # missing cells are None, a long row is refused, as csv.DictReader would have them
        where = {name: i for i, name in enumerate(header)}  # a repeated name: the last one, as DictReader
        used = [(name, where[name]) for name in USED if name in where]
        need = max(where[c] for c in REQUIRED)
        width = len(header)
        open_groups: dict[str, list[dict]] = {}  # insertion order = first seen
        good_time = None  # the last cell read as a time: a measurement's rows repeat it (~50 rows each)
        try:
            for cells in reader:
                if not cells:
                    continue  # a blank line
                line = reader.line_num
                n = len(cells)
                if n > width or n <= need:
                    report.bad(f"{path}:{line}", "wrong number of fields")
                    continue
                row = {name: cells[i] for name, i in used} if n == width else \
                      {name: cells[i] if i < n else None for name, i in used}
                cell = row["measurement_start_time"]
                if cell != good_time:
                    if _time(cell) is None:
                        report.bad(f"{path}:{line}", f"bad measurement_start_time {cell[:40]!r}")
                        continue
                    good_time = cell
                uid = row["measurement_uid"]
                rows = open_groups.get(uid)
                if rows is None:
                    if len(open_groups) >= MAX_OPEN:  # bounded memory: the oldest is complete
                        old_uid = next(iter(open_groups))
                        v = _verdict(open_groups.pop(old_uid), rules, share)
                        report.read += 1
                        yield v
                    rows = open_groups[uid] = []
                rows.append(row)
        except (OSError, EOFError, csv.Error) as exc:
            raise IngestError(f"corrupt or truncated after line {reader.line_num}: {exc}", where=str(path)) from None
        for rows in open_groups.values():
            report.read += 1
            yield _verdict(rows, rules, share)


def _failure_step(row: dict) -> tuple[str, str] | None:
    for step, col in STEPS:
        f = (row.get(col) or "").strip()
        if f:
            return step, f
    fc = (row.get("failure_class") or "").strip()
    if fc and fc != VerdictClass.OK:
        step = "http" if fc == "https" else fc
        return step, (row.get("failure_str") or "failure").strip() or "failure"
    return None


def _verdict(rows: list[dict], rules: RuleSet, share: float) -> Verdict:
    r0 = rows[0]
    endpoints: dict[str, list[tuple[str, str] | None]] = {}
    for r in rows:
        key = (r.get("ip") or r.get("hostname") or "").strip() or "?"
        endpoints.setdefault(key, []).append(_failure_step(r))
    failing = {k: next(f for f in fs if f) for k, fs in endpoints.items() if any(fs)}
    techniques = {k: rules.technique_for(*failing[k]) or f"{failing[k][0]}.failure" if k in failing else VerdictClass.OK for k in endpoints}
    frac = len(failing) / len(endpoints)
    test = (r0.get("test_name") or "").strip()
    host = (r0.get("input") or r0.get("hostname") or "").strip() or None
    service = SERVICE_BY_TEST.get(test)
    if service is None and host:
        service = "telegram" if "telegram" in host else None
    common = dict(
        measurement_uid=r0["measurement_uid"], measurement_start_time=_time(r0["measurement_start_time"]) or "",
        probe_cc=(r0.get("probe_cc") or "ZZ").strip(), probe_asn=asn_label(r0["probe_asn"]), service=service, input=host,
        rules_version=rules.version, probe_network_name=(r0.get("probe_as_org_name") or None), endpoints=techniques,
    )
    if frac < share:
        ids = ["csv.endpoints_ok"] + ([f"csv.failing_endpoints:{len(failing)}/{len(endpoints)}"] if failing else [])
        return Verdict(domain=host, klass=VerdictClass.OK, confidence=round(rules.confidence["ok"] * (1 - frac), 3), rule_ids=ids, **common)
    steps = Counter(techniques[k] for k in failing)
    tech = steps.most_common(1)[0][0]
    fac = rules.factors
    return Verdict(domain=host, klass=tech.split(".")[0], technique=tech,
                   confidence=round(rules.confidence["failure_without_control"]
                                    * (fac["service_share_base"] + fac["service_share_weight"] * frac), 3),
                   rule_ids=[f"csv.failing_endpoints:{len(failing)}/{len(endpoints)}"], **common)
