"""A Finding: what one analyser concluded about one measurement (or endpoint).

Analysers return Findings; engine.py turns them into the public Verdict records.
`rule_ids` name the rules (and fingerprints) that fired, most important first.
A Finding is immutable (frozen; a changed one is `dataclasses.replace(f, ...)`, and its lists
are never edited in place): the round context may judge the same finding more than once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from netvigil.model.vocabulary import CENSORSHIP, VerdictClass, klass_of  # noqa: F401  (klass_of: re-exported)


@dataclass(slots=True, frozen=True)  # thousands per second: no per-instance dict
class Finding:
    """What one judge concluded about one measurement or endpoint, before it is a Verdict.

    Frozen: the round context makes new findings (`dataclasses.replace`) instead of editing
    them, so a round judged twice gives the same answer."""

    klass: str  # a VerdictClass (model/vocabulary.py)
    technique: str | None = None
    confidence: float = 0.0
    confirmed: bool = False
    rule_ids: list[str] = field(default_factory=list)
    domain: str | None = None
    rate_bps: float | None = None
    baseline_ratio: float | None = None
    secondary: list[str] = field(default_factory=list)  # weaker techniques also seen
    failed_share: float | None = None  # share of the endpoints that failed (endpoint tests)
    sample_rates: list[float] = field(default_factory=list)  # every throughput sample's rate
    # endpoint tests: every endpoint tried, each judged alone (endpoints.combine made this from them)
    endpoints: tuple[Endpoint, ...] = ()
    stale: tuple[str, ...] = ()  # endpoints set aside: "domain=technique" (they fail at a control too)

    @property
    def blocked(self) -> bool:
        return self.klass in CENSORSHIP


class Endpoint(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One endpoint (a name, or IP:port) of an endpoint test, judged alone. (A compact
    Struct: every judged measurement carries its endpoints to the analysis process.)"""

    domain: str
    finding: Finding | None  # the first step that failed on the TCP path (None: it worked)
    quic_finding: Finding | None
    tried: int
    quic_tried: int
    inconsistent: list[str]  # failures of a step that also succeeded to the same address
    sample_rates: list[float]  # its throughput samples' rates

    @property
    def technique(self) -> str:
        """What it says in a verdict: its TCP-path technique, else its QUIC one, else `ok`."""
        f = self.finding or self.quic_finding
        return (f.technique or f.klass) if f is not None else VerdictClass.OK

