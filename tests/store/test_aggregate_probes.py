"""Aggregates count probes, not reports or measurements (issue #13: "measurement counts
never masquerade as probe counts"): `probes` is the number of distinct probe ids in the
`voices` table (an anonymous client: its network; lost provenance: one "unknown"), and
`source_networks` the number of distinct source networks."""

from __future__ import annotations

import msgspec

from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.analysis.incidents.quorum import voice_row
from netvigil.collector.provenance import Provenance
from tests.analysis.factory import at, round_of

# who sent each round: probe A from two networks, probe B, an anonymous client, A again, a lost line
WHO = [Provenance("", "198.51.100.0/24", "nvp_a"), Provenance("", "203.0.113.0/24", "nvp_a"),
       Provenance("", "192.0.2.0/24", "nvp_b"), Provenance("", "100.64.0.0/24", None),
       Provenance("", "198.51.100.0/24", "nvp_a"), None]


def test_probes_are_distinct_probe_ids(tmp_path):
    obs = AnalysedStore(tmp_path / "obs")
    try:
        rounds = [[msgspec.structs.replace(m, report_id=f"report-{r}")  # each round its own report
                   for m in round_of(at(r), "AS12389", techniques={"twitter": "tls.reset_after_hello"})]
                  for r in range(len(WHO))]
        obs.add([m for ms in rounds for m in ms])
        got = obs.aggregates(country="RU", bucket="1d")
        assert got and all(a.probes == 0 and a.source_networks == 0 for a in got)  # no voice row: no probe
        obs.db.insert("voices", [voice_row(m.measurement_uid, p if p is None else
                                           msgspec.structs.replace(p, uid=m.measurement_uid))
                                 for p, ms in zip(WHO, rounds) for m in ms])
        got = obs.aggregates(country="RU", bucket="1d")
        assert {a.service for a in got} == {"twitter", "control"}
        for a in got:
            assert a.total == len(WHO)  # six measurements in six reports ...
            assert a.probes == 4  # ... from nvp_a, nvp_b, one anonymous client and one unknown
            assert a.source_networks == 4  # 198.51.100, 203.0.113, 192.0.2, 100.64 (the lost line has none)
        only_b = obs.aggregates(country="RU", bucket="10m", since=at(2), until=at(3))
        assert only_b and all((a.probes, a.source_networks, a.total) == (1, 1, 1) for a in only_b)
    finally:
        obs.close()
