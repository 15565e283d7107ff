"""Incident text in the style of a dated public statement, generated from the Incident.

"Live metrics show that Twitter has been restricted on multiple providers in Russia as of
09:00 UTC on 26 February 2022. ... Circumvention is currently possible using VPN services."
Every clause comes from a field of the incident or of the measured `Facts` beside it
(rates, QUIC blocking, outage size, freshness of the data), so the text can never claim more
than the evidence does. When the newest data is older than the cadence (`Facts.stale`), the
statement is dated by that data and never says "live", "ongoing" or "currently".
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from netvigil.model.records import Incident, NetworkSpan
from netvigil.model.vocabulary import Circumvention, IncidentKind, VerdictClass

WORDS = Path(__file__).with_name("words.toml")


@dataclass
class Facts:
    """What the statement may say beyond the incident record, measured from the store.

    as_of: the newest measurement behind the page (UTC); stale: it is older than the cadence;
    quic: ASN -> first time QUIC was blocked there; level: ASN -> share of the ordinary level
    of successful measurements during an outage (0.0-1.0)."""

    as_of: str | None = None
    stale: bool = False
    quic: dict[str, str] = field(default_factory=dict)
    level: dict[str, float] = field(default_factory=dict)


@lru_cache(maxsize=1)
def words() -> dict:
    with open(WORDS, "rb") as f:
        return tomllib.load(f)


def stale_after_minutes() -> float:
    return float(words().get("freshness", {}).get("stale_after_minutes", 75))


def is_vantage(cc: str) -> bool:
    """A code that is not a country (the lab's control vantage)."""
    return cc.upper() in words().get("vantages", {})


def country_name(cc: str) -> str:
    cc = cc.upper()
    return words()["countries"].get(cc) or words().get("vantages", {}).get(cc) or cc


def place_label(cc: str) -> str:
    """'Russia (RU)' for a country, the vantage's own name for a non-country code."""
    cc = cc.upper()
    if is_vantage(cc):
        return country_name(cc)
    name = country_name(cc)
    name = name[4:] if name.startswith("the ") else name
    return f"{name[:1].upper()}{name[1:]} ({cc})" if name != cc else cc


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def technique_label(tech: str | None) -> str:
    if not tech:
        return ""
    entry = words()["techniques"].get(tech)
    return entry[0] if entry else tech


def technique_phrase(tech: str) -> str:
    entry = words()["techniques"].get(tech)
    return entry[1] if entry else tech


@lru_cache(maxsize=1)
def _display_names() -> dict[str, str]:
    try:
        from netvigil.targets.catalogue import load_catalogue

        return {name: s.display_name for name, s in load_catalogue().services.items()}
    except Exception:  # the text still works with the bare service name
        return {}


def known_services() -> list[str]:
    return sorted(_display_names())


def service_name(service: str) -> str:
    if service in ("*", ""):
        return "All services"
    return _display_names().get(service, service.capitalize())


def _clock(ts: str) -> str:
    return ts[11:16] if len(ts) >= 16 else ts


def day(ts: str) -> str:
    try:
        return datetime.strptime(ts[:10], "%Y-%m-%d").strftime("%-d %B %Y")
    except ValueError:
        return ts[:10]


_day = day


def when(ts: str) -> str:
    """'09:00 UTC on 26 February 2022'."""
    return f"{_clock(ts)} UTC on {day(ts)}"


def network_label(n: NetworkSpan) -> str:
    return f"{n.network_name} ({n.asn})" if n.network_name else n.asn


def _providers(incident: Incident) -> str:
    asns = {n.asn for n in incident.networks}
    if len(asns) == 1:
        n = incident.networks[0]
        return network_label(n) if n.network_name else f"one provider ({n.asn})"
    return "multiple providers"


def _rates(incident: Incident) -> str:
    rates = [t.get("rate_bps") for n in incident.networks for t in (n.techniques or []) if t.get("rate_bps")]
    if not rates:
        return ""
    lo, hi = min(rates) / 1000, max(rates) / 1000
    return f" to about {lo:.0f} kbit/s" if round(lo) == round(hi) else f" to {lo:.0f}-{hi:.0f} kbit/s"


def incident_techniques(incident: Incident) -> list[str]:
    techs = list(incident.techniques)
    for n in incident.networks:
        if n.technique and n.technique not in techs:
            techs.append(n.technique)
    return techs


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _main_change(incident: Incident) -> str:
    """The most common change of technique across networks, as one sentence (or "")."""
    from collections import Counter

    seen: Counter = Counter()
    at: dict[tuple[str, str], str] = {}
    for n in incident.networks:
        steps = [t for t in (n.techniques or []) if t.get("technique")]
        for a, b in zip(steps, steps[1:]):
            key = (a["technique"], b["technique"])
            seen[key] += 1
            at[key] = min(at.get(key, b.get("start") or "9"), b.get("start") or "9")
    if not seen:
        return ""
    (old, new), k = seen.most_common(1)[0]
    rates = [t.get("rate_bps") for n in incident.networks for t in (n.techniques or [])
             if t.get("technique") == old and t.get("rate_bps")]
    was = technique_phrase(old) + (f" (to about {sorted(rates)[len(rates) // 2] / 1000:.0f} kbit/s)" if rates else "")
    nets = len({n.asn for n in incident.networks})
    subject = f"On {k} of {nets} providers the method" if nets > 1 else "The method"
    return f"{subject} changed from {was} to {technique_phrase(new)} at {_clock(at[(old, new)])} UTC."


def _per_provider(incident: Incident) -> str:
    """Which provider uses which method, when they differ; else one sentence for all."""
    latest: dict[str, tuple[str, list[str]]] = {}
    for n in incident.networks:
        tech = (n.techniques[-1].get("technique") if n.techniques else None) or n.technique
        if tech:
            latest.setdefault(tech, ("", []))[1].append(n.network_name or n.asn)
    if not latest:
        return ""
    if len(latest) == 1:
        (tech, _), = latest.items()
        return f"Providers block it by {technique_phrase(tech)}."
    parts = [f"{_join(sorted(names))} by {technique_phrase(t)}" for t, (_, names) in sorted(latest.items())]
    return "Methods differ by provider: " + "; ".join(parts) + "."


def _quic(incident: Incident, facts: Facts) -> str:
    asns = [n for n in incident.networks if n.asn in facts.quic]
    if not asns:
        return ""
    first = min(facts.quic[n.asn] for n in asns)
    names = _join(sorted({n.network_name or n.asn for n in asns}))
    return f"QUIC (HTTP/3) connections are blocked too on {names}, from {_clock(first)} UTC."


def _evidence(incident: Incident) -> str:
    ev = incident.evidence
    if ev is None or not ev.measurement_count:
        return ""
    nets = len({n.asn for n in incident.networks})
    # vantage_networks counts (network, name) vantages, not verified probe identities: only the
    # quorum's count (analysis/incidents/quorum.py: distinct enrolled ids on distinct source networks)
    # is called independent probes; the operator's own data (None) has no such count
    if ev.independent_probes:
        backed = (f"{plural(ev.independent_probes, 'independent probe')} on "
                  f"{plural(nets, 'network')}" + (", a trusted probe among them" if ev.trusted else ""))
    elif ev.trusted and ev.independent_probes is not None:
        backed = f"a trusted probe on {plural(nets, 'network')}"
    else:
        backed = f"probes on {plural(nets, 'network')}"
    if not incident.confirmed:
        backed += ", not yet confirmed by independent probes"
    return f"Based on {plural(ev.measurement_count, 'measurement')} from {backed}."


def _outage(incident: Incident, facts: Facts, where: str, live: bool) -> str:
    svc = service_name(incident.service)
    affecting = "" if incident.service in ("*", "", "control") else f", affecting {svc} among other services"
    levels = [facts.level[n.asn] for n in incident.networks if n.asn in facts.level]
    size = f" at {round(100 * min(levels))}% of ordinary levels" if levels else ""
    if incident.end is None and live:
        first = (f"Live metrics show a disruption to internet connectivity on {where}{size} as of "
                 f"{when(incident.start)}{affecting}.")
    elif incident.end is None:
        first = (f"Metrics up to {when(facts.as_of or incident.start)} show a disruption to internet connectivity "
                 f"on {where}{size} since {when(incident.start)}{affecting}.")
    else:
        first = (f"Metrics showed a disruption to internet connectivity on {where}{size} from "
                 f"{when(incident.start)} to {_clock(incident.end)} UTC{affecting}.")
    second = "The pattern is consistent with a network outage rather than targeted restriction."
    return " ".join(p for p in (first, second, _evidence(incident)) if p)


def incident_text(incident: Incident, facts: Facts | None = None) -> str:
    """The public statement for one incident (ongoing or ended), dated."""
    facts = facts or Facts()
    live = not facts.stale
    where = f"{_providers(incident)} in {country_name(incident.country)}"
    if incident.kind == IncidentKind.OUTAGE:
        return _outage(incident, facts, where, live)
    svc = service_name(incident.service)
    techs = incident_techniques(incident)
    ongoing = incident.end is None
    throttled = bool(techs) and all(t.startswith(VerdictClass.THROTTLED) for t in techs)
    verb = "throttled" + _rates(incident) if throttled else "restricted"
    if ongoing and live:
        first = f"Live metrics show that {svc} has been {verb} on {where} as of {when(incident.start)}."
    elif ongoing:
        first = (f"Metrics up to {when(facts.as_of or incident.start)} show that {svc} has been {verb} on "
                 f"{where} since {when(incident.start)}.")
    else:
        first = (f"Metrics show that {svc} was {verb} on {where} from {_clock(incident.start)} UTC "
                 f"on {day(incident.start)} until {_clock(incident.end)} UTC; service has since been restored.")
    parts = [first]
    if techs and not throttled:
        parts.append(_per_provider(incident))
    parts += [_main_change(incident), _quic(incident, facts)]
    if incident.circumvention == Circumvention.WORKS:
        parts.append("Circumvention is currently possible using VPN services." if ongoing and live
                     else "Circumvention was possible using VPN services.")
    elif incident.circumvention == Circumvention.BLOCKED:
        parts.append("VPN services are also restricted, limiting circumvention.")
    parts.append(_evidence(incident))
    return " ".join(p for p in parts if p)


def incident_title(incident: Incident) -> str:
    svc = service_name(incident.service)
    if incident.kind == IncidentKind.OUTAGE:
        asns = {n.asn for n in incident.networks}
        where = f" on {network_label(incident.networks[0])}" if len(asns) == 1 else ""
        return f"Network outage{where} in {country_name(incident.country)}, {day(incident.start)}"
    what = f"{svc} restricted"
    techs = incident_techniques(incident)
    if techs and all(t.startswith(VerdictClass.THROTTLED) for t in techs):
        what = f"{svc} throttled"
    return f"{what} in {country_name(incident.country)}, {day(incident.start)}"
