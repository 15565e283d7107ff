"""Analysis outputs: verdicts and incidents (docs/design.md section 3).

These are the stable, documented machine-readable records written by
`netvigil analyse --format jsonl` and `netvigil incidents --format jsonl`, served by the
API and scored by `netvigil evaluate`.
"""

from __future__ import annotations

import msgspec

from netvigil.model.vocabulary import CLASSES  # noqa: F401  (the first column of docs/design.md's technique table)


class Verdict(msgspec.Struct, omit_defaults=False):
    """The public judgement of one measurement: class, technique, confidence and the rule ids and
    rules version that produced it, so anyone can check or recompute it."""

    measurement_uid: str
    measurement_start_time: str
    probe_cc: str
    probe_asn: str
    service: str | None
    input: str | None
    domain: str | None
    klass: str = msgspec.field(name="class")  # a VerdictClass (model/vocabulary.py)
    technique: str | None = None  # a Technique, e.g. "tls.reset_after_hello"; None for ok/unknown
    confidence: float = 0.0
    confirmed: bool = False
    rule_ids: list[str] = []
    rules_version: str = ""
    rate_bps: float | None = None  # measured rate for throttling verdicts
    baseline_ratio: float | None = None  # rate / the network's own baseline
    path: str = "direct"  # direct | vpn | proxy (circumvention path)
    probe_network_name: str | None = None
    # endpoint tests: each endpoint judged alone, name -> its technique ("ok" when it worked)
    endpoints: dict[str, str] = {}
    # endpoints set aside (they fail the same way from a control vantage): name -> technique
    stale_endpoints: dict[str, str] = {}


class NetworkSpan(msgspec.Struct):
    """One network's part of an incident: when it started and ended there and how."""

    asn: str
    technique: str | None
    start: str
    end: str | None = None
    network_name: str | None = None
    techniques: list[dict] = []  # how it changed: [{"technique", "start", "end"}]
    circumvention: str = "unknown"  # a Circumvention (works | blocked | unknown), on this network


class Evidence(msgspec.Struct):
    """What backs an incident: the measurements, the rules version and who sent them (the quorum)."""

    measurement_uids: list[str]
    rules_version: str
    # distinct (ASN, network name) vantages the measurements came from; not probes (an anonymous
    # client can claim any vantage): `independent_probes` below counts those. 0 in an incident
    # stored before the field had this name (it was probe_count): `netvigil rebuild` recounts
    vantage_networks: int = 0
    measurement_count: int = 0
    # who backs the claim (analysis/incidents/quorum.py): distinct enrolled probes on distinct source
    # networks, and distinct source networks; None for the operator's own data (not counted)
    independent_probes: int | None = None
    source_networks: int | None = None
    trusted: bool = False  # a trusted probe (or the operator's own data) backs it


class Incident(msgspec.Struct):
    """One (country, service) event of censorship or outage over its networks, with onset and end:
    what the dashboard, the API and the alerts publish."""

    id: str
    country: str
    service: str
    kind: str  # an IncidentKind (model/vocabulary.py): censorship | outage
    start: str
    end: str | None
    networks: list[NetworkSpan]
    circumvention: str = "unknown"  # a Circumvention: works | blocked | unknown
    evidence: Evidence | None = None
    techniques: list[str] = []
    summary: str | None = None
    confirmed: bool = True  # False: fewer independent probes than the quorum, none trusted (unpublished)


class StatusRow(msgspec.Struct):
    """Current status of one service on one network: a cell of the dashboard grid."""

    country: str
    asn: str
    service: str
    klass: str = msgspec.field(name="class")  # latest verdict class for the service
    technique: str | None = None
    since: str | None = None  # when this status began
    last_measurement: str | None = None
    measurements: int = 0
    network_name: str | None = None
    incident_id: str | None = None
    # analysis/incidents/quorum.py: backed by the quorum (or trusted) or not; `measurements` counts
    # measurements, these count independent probes and source networks (None: operator's data)
    confirmed: bool = True
    independent_probes: int | None = None
    source_networks: int | None = None


class AggregateRow(msgspec.Struct):
    """Counts per (country, ASN, service, time bucket)."""

    bucket: str  # bucket start, "YYYY-MM-DD HH:MM:SS" UTC
    country: str
    asn: str
    service: str
    total: int
    counts: dict[str, int]  # class -> count
    techniques: dict[str, int]  # technique -> count
    # distinct probe ids that sent them (analysis/incidents/quorum.py voices; never reports or
    # measurements) and their distinct source networks; 0 for the operator's own imports
    probes: int = 0
    source_networks: int = 0


class IncidentChange(msgspec.Struct):
    """What alerts are sent on: an incident started, changed or ended."""

    event: str  # start | change | end
    incident: Incident
    at: str
    detail: str | None = None
