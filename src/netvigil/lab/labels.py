"""Ground truth: for every (ISP, endpoint, window) the technique in force (docs/design.md section 15).

Times are in the scenario clock ("YYYY-MM-DD HH:MM:SS" UTC), the clock the probes write as
measurement_start_time. Network-wide techniques (outage, outage.partial, throttled.general)
are written for every endpoint measured on that network, the control targets included;
`vpn.blocked` is one line per window with service "vpn" and path "vpn". No line = ok.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from netvigil.lab.scenario import NETWORK_WIDE, TECHNIQUES, TIME_FMT, Scenario, policy_domains
from netvigil.model.vocabulary import Technique


class Label(msgspec.Struct, omit_defaults=True):
    scenario: str
    country: str
    asn: str
    isp: str
    service: str | None
    domain: str | None
    technique: str
    label_class: str = msgspec.field(name="class")
    start: str = ""
    end: str = ""
    variant: str | None = None
    rate_bps: int | None = None
    loss: float | None = None
    path: str | None = None


def measured_domains(scenario: Scenario) -> list[tuple[str, str]]:
    """(service, domain) for every endpoint the probes measure, controls included."""
    from netvigil.targets.catalogue import load_catalogue

    cat = load_catalogue()
    out = []
    for name in list(scenario.services) + ["control"]:
        out += [(name, e.domain) for e in cat.service(name).endpoints if not e.is_ip]
    return list(dict.fromkeys(out))


def build_labels(scenario: Scenario) -> list[Label]:
    from netvigil.targets.catalogue import load_catalogue

    cat = load_catalogue()
    out: list[Label] = []
    for isp in scenario.isps:
        for p in isp.policies:
            for w in p.windows:
                start, end = max(w.start, scenario.start), min(w.end, scenario.end)
                if end <= start:
                    continue
                base = dict(scenario=scenario.name, country=isp.cc, asn=isp.asn, isp=isp.name,
                            technique=p.technique, label_class=TECHNIQUES[p.technique], start=start.strftime(TIME_FMT), end=end.strftime(TIME_FMT),
                            variant=p.variant, rate_bps=p.rate_bps, loss=p.loss)
                if p.technique == Technique.VPN_BLOCKED:
                    out.append(Label(service="vpn", domain=None, path="vpn", **base))
                elif p.technique in NETWORK_WIDE:
                    out += [Label(service=s, domain=d, **base) for s, d in measured_domains(scenario)]
                else:
                    out += [Label(service=cat.service_for_domain(d), domain=d, **base) for d in policy_domains(p)]
    return out


def write_labels(scenario: Scenario, path: Path) -> int:
    labels = build_labels(scenario)
    enc = msgspec.json.Encoder()
    with open(path, "wb") as f:
        for label in labels:
            f.write(enc.encode(label) + b"\n")
    return len(labels)
