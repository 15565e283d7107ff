"""Add the measured throttling rates to an incident before it is told or shown.

Incidents carry per-network technique spans; the measured rate of a throttling verdict
lives on the verdicts. The statement ("throttled to about 130 kbit/s") and the incident
page take the median rate of each network's throttled verdicts within the incident.
"""

from __future__ import annotations

import copy
import statistics

from netvigil.model.records import Incident, Verdict


def with_rates(incident: Incident, verdicts: list[Verdict]) -> Incident:
    rates: dict[str, list[float]] = {}
    for v in verdicts:
        if v.technique and v.technique.startswith("throttled") and v.rate_bps and v.path == "direct":
            rates.setdefault(v.probe_asn, []).append(v.rate_bps)
    if not rates:
        return incident
    inc = copy.deepcopy(incident)
    for n in inc.networks:
        if n.asn in rates:
            rate = statistics.median(rates[n.asn])
            for t in n.techniques or []:
                if str(t.get("technique", "")).startswith("throttled"):
                    t["rate_bps"] = round(rate)
    return inc


def verdict_query(incident: Incident) -> dict:
    return {"country": incident.country, "service": incident.service, "since": incident.start,
            "until": incident.end, "limit": 5000}


async def with_rates_from(pump, incident: Incident) -> Incident:
    if incident.kind != "censorship":
        return incident
    try:
        verdicts = await pump.call("verdicts", **verdict_query(incident))
    except Exception:  # the statement is still right without the rate
        return incident
    return with_rates(incident, verdicts)
