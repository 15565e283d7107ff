"""Incident text in the style of a dated public statement, generated from the Incident.

"Live metrics show that Twitter has been restricted on multiple providers in Russia as of
09:00 UTC. Circumvention is currently possible using VPN services."
Every clause comes from a field of the incident (kind, networks, techniques, times,
circumvention), so the text can never claim more than the evidence does.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from netvigil.model.records import Incident

WORDS = Path(__file__).with_name("words.toml")


@lru_cache(maxsize=1)
def words() -> dict:
    with open(WORDS, "rb") as f:
        return tomllib.load(f)


def country_name(cc: str) -> str:
    return words()["countries"].get(cc.upper(), cc.upper())


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


def service_name(service: str) -> str:
    return _display_names().get(service, service.capitalize())


def _clock(ts: str) -> str:
    return ts[11:16] if len(ts) >= 16 else ts


def _day(ts: str) -> str:
    try:
        return datetime.strptime(ts[:10], "%Y-%m-%d").strftime("%-d %B %Y")
    except ValueError:
        return ts[:10]


def _providers(incident: Incident) -> str:
    nets = incident.networks
    if len(nets) == 1:
        n = nets[0]
        return f"{n.network_name} ({n.asn})" if n.network_name else f"one provider ({n.asn})"
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


def _main_change(incident: Incident) -> str:
    """The most common change of technique across networks, as one sentence (or "")."""
    from collections import Counter

    seen: Counter = Counter()
    when: dict[tuple[str, str], str] = {}
    for n in incident.networks:
        steps = [t for t in (n.techniques or []) if t.get("technique")]
        for a, b in zip(steps, steps[1:]):
            key = (a["technique"], b["technique"])
            seen[key] += 1
            when[key] = min(when.get(key, b.get("start") or "9"), b.get("start") or "9")
    if not seen:
        return ""
    (old, new), k = seen.most_common(1)[0]
    rates = [t.get("rate_bps") for n in incident.networks for t in (n.techniques or [])
             if t.get("technique") == old and t.get("rate_bps")]
    was = technique_phrase(old) + (f" (about {sorted(rates)[len(rates) // 2] / 1000:.0f} kbit/s)" if rates else "")
    subject = f"On {k} of {len(incident.networks)} providers it" if len(incident.networks) > 1 else "It"
    return (f"{subject} changed from {was} to {technique_phrase(new)} at "
            f"{_clock(when[(old, new)])} UTC.")


def incident_text(incident: Incident) -> str:
    """The public statement for one incident (ongoing or ended)."""
    svc = service_name(incident.service)
    where = f"{_providers(incident)} in {country_name(incident.country)}"
    techs = incident_techniques(incident)
    ongoing = incident.end is None
    if incident.kind == "outage":
        affecting = "" if incident.service in ("*", "", "control") else f", affecting {svc} among other services"
        if ongoing:
            first = (f"Live metrics show a disruption to internet connectivity on {where} as of "
                     f"{_clock(incident.start)} UTC{affecting}.")
        else:
            first = (f"Live metrics showed a disruption to internet connectivity on {where} from "
                     f"{_clock(incident.start)} to {_clock(incident.end)} UTC.")
        second = "The pattern is consistent with a network outage rather than targeted restriction."
        return f"{first} {second}"
    throttled = bool(techs) and all(t.startswith("throttled") for t in techs)
    verb = "throttled" + _rates(incident) if throttled else "restricted"
    if ongoing:
        first = f"Live metrics show that {svc} has been {verb} on {where} as of {_clock(incident.start)} UTC."
    else:
        first = (f"Live metrics show that {svc} was {verb} on {where} from {_clock(incident.start)} UTC "
                 f"on {_day(incident.start)} until {_clock(incident.end)} UTC; service has since been restored.")
    parts = [first]
    if techs and not throttled:
        phrases = [technique_phrase(t) for t in techs]
        joined = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        parts.append(f"The restriction is implemented with {joined}.")
    change = _main_change(incident)
    if change:
        parts.append(change)
    if incident.circumvention == "works":
        parts.append(("Circumvention is currently possible using VPN services." if ongoing
                      else "Circumvention was possible using VPN services."))
    elif incident.circumvention == "blocked":
        parts.append("VPN services are also restricted, limiting circumvention.")
    return " ".join(parts)


def incident_title(incident: Incident) -> str:
    svc = service_name(incident.service)
    what = "Network outage" if incident.kind == "outage" else f"{svc} restricted"
    if incident.kind != "outage" and any(t.startswith("throttled") for t in incident_techniques(incident)):
        what = f"{svc} throttled" if all(t.startswith("throttled") for t in incident_techniques(incident)) else what
    return f"{what} in {country_name(incident.country)}, {_day(incident.start)}"
