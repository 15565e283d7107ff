"""What a statement or page says beyond the incident record, measured from the store.

Incidents carry per-network technique spans; the measured rate of a throttling verdict, a
QUIC block seen beside the main technique (rule id `secondary:quic.blocked`) and the size of
an outage live in the verdicts and aggregates. The statement ("throttled to about 130
kbit/s", "QUIC is blocked too", "at 12% of ordinary levels") and the pages take them from
here, so the list, the detail, the page and `netvigil report` say the same thing.
"""

from __future__ import annotations

import copy
import statistics
from datetime import datetime, timedelta, timezone

from netvigil.model.records import AggregateRow, Incident, Verdict
from netvigil.model import times
from netvigil.model.times import FORMAT
from netvigil.model.vocabulary import IncidentKind, VerdictClass
from netvigil.report.repository import LocalRepository, ReadRepository
from netvigil.report.text import Facts, stale_after_minutes

QUIC_RULE = "secondary:quic.blocked"
FMT = FORMAT


def with_rates(incident: Incident, verdicts: list[Verdict]) -> Incident:
    rates: dict[str, list[float]] = {}
    for v in verdicts:
        if v.technique and v.technique.startswith(VerdictClass.THROTTLED) and v.rate_bps and v.path == "direct":
            rates.setdefault(v.probe_asn, []).append(v.rate_bps)
    if not rates:
        return incident
    inc = copy.deepcopy(incident)
    for n in inc.networks:
        if n.asn in rates:
            rate = statistics.median(rates[n.asn])
            for t in n.techniques or []:
                if str(t.get("technique", "")).startswith(VerdictClass.THROTTLED):
                    t["rate_bps"] = round(rate)
    return inc


def quic_blocked(incident: Incident, verdicts: list[Verdict]) -> dict[str, str]:
    """ASN -> first time QUIC was seen blocked on the direct path within the incident."""
    asns = {n.asn for n in incident.networks}
    out: dict[str, str] = {}
    for v in verdicts:
        if v.path == "direct" and v.probe_asn in asns and QUIC_RULE in v.rule_ids:
            t = v.measurement_start_time[:19].replace("T", " ")
            if v.probe_asn not in out or t < out[v.probe_asn]:
                out[v.probe_asn] = t
    return out


def outage_levels(incident: Incident, rows: list[AggregateRow]) -> dict[str, float]:
    """ASN -> successful measurements per bucket during the outage as a share of the
    ordinary level (the median per bucket before the onset). The probes keep measuring during
    an outage; their successes are the network's connectivity as NetBlocks' "X% of ordinary
    levels" counts reachable hosts."""
    out: dict[str, float] = {}
    for n in incident.networks:
        before: dict[str, int] = {}
        during: dict[str, int] = {}
        for r in rows:
            if r.asn != n.asn:
                continue
            t = r.bucket[:19]
            ok = r.counts.get("ok", 0)
            if t < n.start:
                before[t] = before.get(t, 0) + ok
            elif n.end is None or t < n.end:
                during[t] = during.get(t, 0) + ok
        if before and during:
            ordinary = statistics.median(before.values())
            if ordinary > 0:
                out[n.asn] = min(1.0, statistics.median(during.values()) / ordinary)
    return out


def freshness(latest: str | None, now: datetime | None = None) -> tuple[str | None, bool]:
    """(as_of, stale): stale when the newest data is older than the cadence (words.toml)."""
    if not latest:
        return None, False
    now = now or datetime.now(timezone.utc).replace(tzinfo=None)
    t = times.naive(latest)
    return latest[:19], now - t > timedelta(minutes=stale_after_minutes())


def verdict_query(incident: Incident) -> dict:
    return {"country": incident.country, "service": incident.service, "since": incident.start,
            "until": incident.end, "limit": 5000}


def newest(rows) -> str | None:
    """The newest measurement time of status rows (what a page's freshness is told from)."""
    return max((r.last_measurement for r in rows if r.last_measurement), default=None)


async def latest_time(reads: ReadRepository, country: str | None = None) -> str | None:
    return newest(await reads.status(country=country))


_TOLD: dict[tuple, tuple[Incident, Facts]] = {}
TOLD_CACHE = 512


async def told(reads: ReadRepository, incident: Incident, latest: str | None = None) -> tuple[Incident, Facts]:
    """The incident with its measured rates, and the facts its statement may add; kept per
    (incident record, newest data, analysed total): lists and pages ask again every 5 s."""
    import hashlib

    import msgspec

    if latest is None:
        latest = await latest_time(reads, incident.country)
    key = (incident.id, hashlib.blake2b(msgspec.json.encode(incident), digest_size=8).digest(), latest,
           reads.analysed, freshness(latest)[1])
    hit = _TOLD.get(key)
    if hit is None:
        hit = _TOLD[key] = await _told(reads, incident, latest)
        while len(_TOLD) > TOLD_CACHE:
            _TOLD.pop(next(iter(_TOLD)))
    return hit


async def _told(reads: ReadRepository, incident: Incident, latest: str) -> tuple[Incident, Facts]:
    as_of, stale = freshness(latest)
    facts = Facts(as_of=as_of, stale=stale)
    try:
        if incident.kind == IncidentKind.CENSORSHIP:
            verdicts = await reads.verdicts(**verdict_query(incident))
            incident = with_rates(incident, verdicts)
            facts.quic = quic_blocked(incident, verdicts)
        else:
            since = (times.naive(incident.start) - timedelta(hours=6)).strftime(FMT)
            rows = await reads.aggregates(country=incident.country, since=since, until=incident.end,
                                          bucket="30m")
            facts.level = outage_levels(incident, rows)
    except Exception:  # the statement is still right without these clauses
        pass
    return incident, facts


StoreReader = LocalRepository  # the name the CLI, tests and benchmarks use for a store open here
