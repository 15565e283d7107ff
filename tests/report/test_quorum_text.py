"""Statements and the evidence block say how many independent probes back a claim, never
calling measurements or vantage networks probes (analysis/incidents/quorum.py, issue #13)."""

from __future__ import annotations

import msgspec

from netvigil.model.records import Evidence, Incident, NetworkSpan
from netvigil.report.dashboard_parts import evidence_block
from netvigil.report.text import incident_text


def incident(ev: Evidence, confirmed: bool = True) -> Incident:
    return Incident(id="i1", country="DE", service="twitter", kind="censorship", start="2026-12-06 09:00:00",
                    end=None, networks=[NetworkSpan("AS3320", "tls.reset_after_hello", "2026-12-06 09:00:00",
                                                    network_name="Deutsche Telekom")],
                    evidence=ev, confirmed=confirmed)


def test_statement_counts_independent_probes_apart_from_measurements():
    ev = Evidence(["u1"], "r1", vantage_networks=1, measurement_count=40, independent_probes=3, source_networks=4)
    assert incident_text(incident(ev)).endswith("Based on 40 measurements from 3 independent probes on 1 network.")
    trusted = msgspec.structs.replace(ev, independent_probes=1, trusted=True)
    assert incident_text(incident(trusted)).endswith(
        "Based on 40 measurements from 1 independent probe on 1 network, a trusted probe among them.")
    # the operator's own data: nothing counted, nothing claimed
    own = Evidence(["u1"], "r1", vantage_networks=1, measurement_count=40)
    assert incident_text(incident(own)).endswith("Based on 40 measurements from probes on 1 network.")
    lone = msgspec.structs.replace(ev, independent_probes=1, source_networks=1)
    text = incident_text(incident(lone, confirmed=False))
    assert text.endswith("from 1 independent probe on 1 network, not yet confirmed by independent probes.")


def test_evidence_block_shows_the_backing():
    ev = Evidence(["u1"], "r1", vantage_networks=1, measurement_count=40, independent_probes=2, source_networks=2)
    html = evidence_block(incident(ev))
    assert "40 measurements" in html and "Backed by 2 independent probes from 2 source networks." in html
    assert "Unconfirmed" not in html and "Backed by" not in evidence_block(incident(Evidence(["u1"], "r1", vantage_networks=1, measurement_count=40)))
    lone = msgspec.structs.replace(ev, independent_probes=1, source_networks=1)
    assert "<strong>Unconfirmed</strong>" in evidence_block(incident(lone, confirmed=False))
