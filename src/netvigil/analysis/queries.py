"""Row conversions and SQL fragments shared by the AnalysedStore (one SQL for both engines)."""

from __future__ import annotations


import msgspec

from netvigil.model import times
from netvigil.model.measurement import Measurement
from netvigil.model.records import AggregateRow, Incident, IncidentChange, StatusRow, Verdict
from netvigil.model.vocabulary import IncidentKind
from netvigil.store.engine import sql_str


_time = times.stored
shift_time = times.shift


def as_asn(asn) -> str:
    """'AS1234' from 'AS1234', 'as1234' kept as given, or 1234."""
    a = str(asn)
    return a if a.upper().startswith("AS") else "AS" + a


def measurement_row(m: Measurement, service: str | None) -> dict:
    ann = m.annotations if isinstance(m.annotations, dict) else {}
    inp = m.input if isinstance(m.input, str) else (m.input[0] if m.input else "")
    t = _time(m.measurement_start_time)
    return {
        "uid": m.measurement_uid, "time": t, "day": t[:10] if t[4:5] == "-" else "1970-01-01",
        "cc": m.probe_cc, "asn": m.probe_asn, "network_name": m.probe_network_name or "",
        "test_name": m.test_name, "service": service or "", "input": inp or "",
        "path": str(ann.get("path") or "direct"), "report_id": m.report_id or "",
    }


ENDPOINT, STALE = "~endpoint:", "~stale:"  # (no rule id starts with "~")


def _split_rule_ids(ids: list[str]) -> tuple[list[str], dict[str, str], dict[str, str]]:
    rules, eps, stale = [], {}, {}
    for x in ids:
        if x.startswith(ENDPOINT):
            k, _, t = x[len(ENDPOINT):].rpartition("=")
            eps[k] = t
        elif x.startswith(STALE):
            k, _, t = x[len(STALE):].rpartition("=")
            stale[k] = t
        else:
            rules.append(x)
    return rules, eps, stale


def verdict_row(v: Verdict, report_id: str) -> dict:
    return {
        "uid": v.measurement_uid, "time": _time(v.measurement_start_time), "cc": v.probe_cc, "asn": v.probe_asn,
        "network_name": v.probe_network_name or "", "service": v.service or "", "input": v.input or "",
        "domain": v.domain or "", "class": v.klass, "technique": v.technique or "", "confidence": v.confidence,
        "confirmed": int(v.confirmed), "rules_version": v.rules_version,
        # the per-endpoint fields ride in the rule_ids column (no schema change for old stores)
        "rule_ids": v.rule_ids + [f"{ENDPOINT}{k}={t}" for k, t in v.endpoints.items()]
        + [f"{STALE}{k}={t}" for k, t in v.stale_endpoints.items()],
        "rate_bps": v.rate_bps, "baseline_ratio": v.baseline_ratio, "path": v.path, "report_id": report_id or "",
    }


def _float(x) -> float | None:
    return None if x is None else float(x)  # (the store's JSON writes 4024460274.0 as 4024460274)


def verdict_from_row(r: dict) -> Verdict:
    rule_ids, eps, stale = _split_rule_ids(list(r["rule_ids"]))
    return Verdict(
        measurement_uid=r["uid"], measurement_start_time=r["time"], probe_cc=r["cc"], probe_asn=r["asn"],
        service=r["service"] or None, input=r["input"] or None, domain=r["domain"] or None, klass=r["class"],
        technique=r["technique"] or None, confidence=round(float(r["confidence"]), 3), confirmed=bool(r["confirmed"]),
        rule_ids=rule_ids, rules_version=r["rules_version"], rate_bps=_float(r["rate_bps"]),
        baseline_ratio=_float(r["baseline_ratio"]), path=r["path"], probe_network_name=r["network_name"] or None,
        endpoints=eps, stale_endpoints=stale,
    )


PATHS = ("direct", "vpn", "proxy", "any")


def where(*, country=None, asn=None, service=None, since=None, until=None, direct: bool = False,
          path: str | None = None) -> str:
    """SQL WHERE of the read filters. `path`: one measurement path ("direct", "vpn", ...) or
    "any"/None for every path; `direct=True` is `path="direct"`."""
    conds = []
    if country:
        conds.append(f"cc = {sql_str(country)}")
    if asn:
        conds.append(f"asn = {sql_str(as_asn(asn))}")
    if service and service != "*":  # "*": every service (outage incidents)
        conds.append(f"service = {sql_str(service)}")
    if since:
        conds.append(f"time >= toDateTime({sql_str(_time(str(since)))}, 'UTC')")
    if until:
        conds.append(f"time < toDateTime({sql_str(_time(str(until)))}, 'UTC')")
    if direct or path == "direct":
        conds.append("path = 'direct'")
    elif path and path != "any":
        conds.append(f"path = {sql_str(path)}")
    return ("WHERE " + " AND ".join(conds)) if conds else ""


def fold_aggregates(rows: list[dict], probes: dict[tuple, int] | None = None) -> list[AggregateRow]:
    out: dict[tuple, AggregateRow] = {}
    for r in rows:
        key = (r["bucket"], r["cc"], r["asn"], r["service"])
        a = out.get(key)
        if a is None:
            a = out[key] = AggregateRow(bucket=r["bucket"], country=r["cc"], asn=r["asn"], service=r["service"],
                                        total=0, counts={}, techniques={}, probes=0)
        n = int(r["n"])
        a.total += n
        a.counts[r["class"]] = a.counts.get(r["class"], 0) + n
        if r["technique"]:
            a.techniques[r["technique"]] = a.techniques.get(r["technique"], 0) + n
        a.probes = max(a.probes, int(r["probes"]))
    for key, a in out.items():
        if probes and key in probes:
            a.probes = probes[key]
    return list(out.values())


Spans = dict[tuple[str, str, str], tuple[str, str]]  # (cc, asn, service or "*") -> (incident id, since)


def incident_spans(ongoing: list[Incident]) -> Spans:
    """Which ongoing incident explains which cells: a network's open span of a service's
    incident, or of an outage of the whole network ("*")."""
    span_of: Spans = {}
    for inc in ongoing:
        whole_network = inc.kind == IncidentKind.OUTAGE or inc.service == "*"
        for n in inc.networks:
            if n.end is None:
                key = (inc.country, n.asn, "*" if whole_network else inc.service)
                span_of.setdefault(key, (inc.id, n.start))
    return span_of


def status_row(cc: str, asn: str, service: str, klass: str, technique: str, last: str, n: int,
               network_name: str, span_of: Spans) -> StatusRow:
    """One status cell with the ongoing incident that explains it: the service's own incident,
    else an outage of the whole network. A service's incident never explains the cells of
    other services (the control cell of a network is not part of its Twitter block)."""
    incident_id, since = span_of.get((cc, asn, service)) or span_of.get((cc, asn, "*")) or (None, None)
    return StatusRow(country=cc, asn=asn, service=service, klass=klass, technique=technique or None, since=since,
                     last_measurement=last, measurements=int(n), network_name=network_name or None,
                     incident_id=incident_id)


def status_rows(rows: list[dict], ongoing: list[Incident]) -> list[StatusRow]:
    """Status cells (LiveState.status_rows) with the ongoing incident that explains them."""
    span_of = incident_spans(ongoing)
    return [status_row(r["cc"], r["asn"], r["service"], r["class"], r["technique"], r["last"], r["n"],
                       r["network_name"], span_of) for r in rows]


def incident_row(i: Incident) -> dict:
    import time

    return {"id": i.id, "country": i.country, "service": i.service, "kind": i.kind, "start": i.start, "end": i.end,
            "body": msgspec.json.encode(i).decode(), "version": time.time_ns(), **incident_keys(i)}


def incident_keys(i: Incident) -> dict[str, list[str]]:
    """The incident's networks and techniques as columns (store/schema.py): what a read filters
    on (analysis/reads.py) is inside the body, so it is written beside it too."""
    return {"asns": sorted({n.asn for n in i.networks}),
            "techniques": sorted({*i.techniques, *(n.technique for n in i.networks if n.technique)})}


def diff_incidents(old: dict[str, Incident], new: dict[str, Incident], now: str) -> list[IncidentChange]:
    changes = []
    for iid, inc in new.items():
        prev = old.get(iid)
        if prev is None:
            changes.append(IncidentChange(event="start", incident=inc, at=inc.start))
            if inc.end is not None:
                changes.append(IncidentChange(event="end", incident=inc, at=inc.end))
            continue
        if prev.end is None and inc.end is not None:
            changes.append(IncidentChange(event="end", incident=inc, at=inc.end))
            continue
        before = {(n.asn, n.technique, n.end) for n in prev.networks}
        after = {(n.asn, n.technique, n.end) for n in inc.networks}
        if before != after or prev.circumvention != inc.circumvention:
            detail = _describe(prev, inc)
            changes.append(IncidentChange(event="change", incident=inc, at=now, detail=detail))
    return changes


def _describe(prev: Incident, inc: Incident) -> str:
    parts = []
    pa = {n.asn: n.technique for n in prev.networks}
    for n in inc.networks:
        if n.asn not in pa:
            parts.append(f"{n.asn} joined ({n.technique})")
        elif pa[n.asn] != n.technique:
            parts.append(f"{n.asn}: {pa[n.asn]} -> {n.technique}")
    if prev.circumvention != inc.circumvention:
        parts.append(f"circumvention {prev.circumvention} -> {inc.circumvention}")
    return "; ".join(parts) or "networks changed"
