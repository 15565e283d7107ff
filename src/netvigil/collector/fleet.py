"""The observatory's side of the probe fleet: who is submitting, their quotas, their reports.

`Fleet` (one per app, `fleet_of(app)`) holds the probe registry, the provenance log, the
check-in answer and three kinds of token bucket (collector/quota.py's RateLimiter):
- per probe: an enrolled probe is charged on its own bucket (key "probe:ID") instead of its
  address's, so probes behind one NAT do not starve each other;
- per source network (/24 or /64), for every client, enrolled or not, so that one network
  cannot pass as many probes (`--network-rate`, a multiple of `--rate`);
- per claimed ASN, charged for every measurement (single or batch) once decoded, before it is
  stored, so that no network floods one ASN's series however many ids it enrols;
and enrolments per source network (`--enrol-per-hour`).

Voices: `voice_of(request)` is who speaks: an enrolled probe ("probe:ID"), a trusted-token
client ("token:HASH") or an anonymous client ("addr:ADDRESS"). A report is bound to the voice
that opened it; only that voice may submit to or close it (403 otherwise).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from netvigil.collector.probes import ClaimCheck, Probe, ProbeRegistry, check_claim, is_local, source_network
from netvigil.collector.provenance import Provenance, ProvenanceLog
from netvigil.collector.quota import RateLimiter, charge
from netvigil.model.checkin import CheckIn, CheckInAnswer  # noqa: F401  (the protocol: model/checkin.py)
from netvigil.targets.geo import Locator, default_locator


@dataclass
class FleetSettings:
    """`netvigil serve` options for the fleet (passed as create_app(extra={"fleet": ...}))."""

    invite_token: str | None = None  # None: open enrolment
    trusted_invite_token: str | None = None  # probes enrolled with it are trusted (analysis/incidents/quorum.py)
    services: tuple[str, ...] = ()  # what agents measure; () = every service of the catalogue
    cadence_seconds: float = 3600.0  # between an agent's rounds
    jitter: float = 0.25  # each agent's wait is cadence x (1 +- jitter), drawn by the agent
    helpers: tuple[str, ...] = ()  # HOST:PORT of test helpers, handed to agents at check-in
    network_factor: float = 4.0  # a /24 (/64) may send this many times one probe's rate
    asn_factor: float = 20.0  # a claimed ASN: this many times one probe's rate
    enrol_per_hour: float = 20.0  # enrolments per source network per hour (burst the same)


class Fleet:
    """The enrolled probes, their provenance and their buckets (per probe, source network,
    claimed ASN, enrolments), and the check-in answer: one per app (`fleet_of(app)`)."""

    def __init__(self, data_dir: Path, settings, fleet: FleetSettings):
        self.settings = fleet
        self.registry = ProbeRegistry(Path(data_dir) / "collector" / "probes.jsonl")
        self.provenance = ProvenanceLog(Path(data_dir) / "collector" / "provenance.jsonl")
        rate, burst = settings.rate_per_second, settings.rate_burst
        self.networks = RateLimiter(rate * fleet.network_factor, burst * fleet.network_factor)
        self.asns = RateLimiter(rate * fleet.asn_factor, burst * fleet.asn_factor)
        self.enrolments = RateLimiter(fleet.enrol_per_hour / 3600.0, max(1.0, fleet.enrol_per_hour))
        self.locator: Locator = default_locator()
        from netvigil.targets import load_catalogue

        catalogue = load_catalogue()
        self.catalogue_version = catalogue.version
        names = list(fleet.services) or [n for n in catalogue.services if n != "control"]
        for name in names:
            catalogue.service(name)  # a UsageError names an unknown service
        self.services = names
        self._locate = lru_cache(maxsize=65536)(self._locate_uncached)

    # ---- who is speaking ------------------------------------------------------------

    def probe_of(self, token: str | None) -> Probe | None:
        return self.registry.verify(token) if token else None

    def _locate_uncached(self, address: str) -> tuple[str, str, str, bool]:
        if is_local(address):
            return "AS0", "ZZ", "", False
        where = self.locator.locate(address)
        return where.probe_asn, where.cc, where.network_name, where.asn != 0 or where.cc != "ZZ"

    def check_in(self, probe: Probe | None, address: str, body: CheckIn) -> CheckInAnswer:
        asn, cc, name, located = self._locate(address)
        return CheckInAnswer(
            v=1, probe_id=probe.probe_id if probe else None, catalogue_version=self.catalogue_version,
            services=self.services, cadence_seconds=self.settings.cadence_seconds, jitter=self.settings.jitter,
            helpers=list(self.settings.helpers), probe_asn=asn, probe_cc=cc, probe_network_name=name,
            located=located, utc_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    # ---- quotas ---------------------------------------------------------------------

    def charge_network(self, address: str, cost: float, what: str) -> None:
        charge(self.networks, source_network(address), cost, what)

    def charge_asn(self, probe_asn: str, cost: float, what: str) -> None:
        charge(self.asns, f"claimed {probe_asn}", cost, what)

    def admit_enrolment(self, address: str) -> None:
        charge(self.enrolments, source_network(address), 1.0, "enrolment")

    # ---- provenance -----------------------------------------------------------------

    def provenance_rows(self, uids: list[str], index: dict, probe: Probe | None,
                        address: str | None, trusted: bool = False) -> list[Provenance]:
        """`trusted`: sent with the operator's probe token (an enrolled probe's trust is the registry's)."""
        network = source_network(address)
        local = is_local(address)
        claims: dict[tuple[str, str], tuple[str, str]] = {}  # one look-up per claimed (ASN, country) of a batch
        rows = []
        for uid in uids:
            meta = index.get(uid)
            if meta is None:
                continue
            key = (meta.probe_asn, meta.probe_cc)
            checked = claims.get(key)
            if checked is None:
                claim, located = check_claim(address, *key, self.locator) if not local \
                    else (ClaimCheck.UNKNOWN, "local address")
                checked = claims[key] = (claim.value, located)
            rows.append(Provenance(uid=uid, network=network, probe_id=probe.probe_id if probe else None,
                                   claim=checked[0], located=checked[1], trusted=trusted and probe is None))
        return rows


def voice(probe: Probe | None, token: str | None, trusted_token: bool, address: str) -> str:
    """Who speaks, as a report owner: the probe, the trusted token (hashed), or the address."""
    if probe is not None:
        return f"probe:{probe.probe_id}"
    if trusted_token and token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return f"addr:{address}"


def fleet_of(app) -> Fleet:
    """The app's Fleet, made on first use from its settings (settings.extra["fleet"])."""
    fleet = getattr(app.state, "fleet", None)
    if fleet is None:
        nv = app.state.nv
        conf = nv.settings.extra.get("fleet") or FleetSettings()
        fleet = app.state.fleet = Fleet(nv.data_dir, nv.settings, conf)
    return fleet
