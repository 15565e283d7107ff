"""The quorum gate puts a country's window by network once per refresh (quorum.by_network) and
looks at each incident's networks only (issue #13: each incident scanned the whole window).
On seeded windows and incidents, the uids it finds must be those of the whole scan, the gated
incident the same, and a window changed in place after a feed must be put by network again."""

from __future__ import annotations

import random

import msgspec
import pytest

from netvigil.analysis.incidents.quorum import Quorum, Voice, by_network, supporting
from netvigil.model.records import Evidence, Incident, NetworkSpan, Verdict

ASNS = ["AS1", "AS2", "AS3", "AS4"]


def _window(rng: random.Random, n: int) -> list[Verdict]:
    vs = []
    for i in range(n):
        minute = rng.randint(0, 600)
        vs.append(Verdict(measurement_uid=f"u{i:05d}", measurement_start_time=f"2026-12-06 {minute // 60:02d}:{minute % 60:02d}:00",
                          probe_cc="RU", probe_asn=rng.choice(ASNS), service=rng.choice(["twitter", "facebook", None]),
                          input=None, domain=None, klass=rng.choice(["ok", "ok", "tls", "dns", "outage"]),
                          technique=None, path=rng.choice(["direct", "vpn"])))
    return sorted(vs, key=lambda v: (v.measurement_start_time, v.measurement_uid))


def _incident(rng: random.Random, k: int) -> Incident:
    kind = rng.choice(["censorship", "outage"])
    start = rng.randint(0, 500)
    end = rng.choice([None, start + rng.randint(0, 200)])
    t = lambda m: f"2026-12-06 {min(m, 599) // 60:02d}:{min(m, 599) % 60:02d}:00"  # noqa: E731
    nets = [NetworkSpan(asn=a, technique=None, start=t(start)) for a in rng.sample(ASNS, rng.randint(1, 3))]
    return Incident(id=f"i{k}", country="RU", service="*" if kind == "outage" else rng.choice(["twitter", "facebook"]),
                    kind=kind, start=t(start), end=None if end is None else t(end), networks=nets,
                    evidence=Evidence(measurement_uids=[], rules_version="t", measurement_count=1))


class Book:
    generation = 0

    def __init__(self, voices: dict[str, Voice]):
        self.v = voices

    def voices(self, uids):
        return {u: self.v[u] for u in uids}


@pytest.mark.parametrize("seed", range(10))
def test_by_network_finds_the_uids_of_the_whole_scan(seed):
    rng = random.Random(seed)
    vs = _window(rng, 400)
    index = by_network(vs)
    found = 0
    for k in range(30):
        inc = _incident(rng, k)
        want = supporting(inc, vs)
        got = supporting(inc, vs, index)
        assert sorted(got) == sorted(want) and len(got) == len(set(got))
        found += len(want)
    assert found > 0


@pytest.mark.parametrize("seed", range(6))
def test_gated_incidents_are_the_same_and_a_fed_window_is_indexed_again(seed):
    rng = random.Random(seed)
    vs = _window(rng, 300)
    voices = {v.measurement_uid: Voice(f"p{rng.randint(0, 6)}", f"n{rng.randint(0, 4)}") for v in vs}
    q = Quorum(Book(voices), 2)
    incidents = [_incident(rng, k) for k in range(12)]

    def scanned(inc):  # the gate as it was: the whole window scanned for each incident
        fresh = Quorum(Book(voices), 2)
        b = fresh.backing_of(supporting(inc, vs))
        ev = msgspec.structs.replace(inc.evidence, independent_probes=b.independent_probes,
                                     source_networks=b.source_networks, trusted=b.trusted)
        return msgspec.structs.replace(inc, evidence=ev, confirmed=b.confirmed(2))

    enc = msgspec.json.encode
    assert [enc(q.incident(i, vs)) for i in incidents] == [enc(scanned(i)) for i in incidents]
    # the window changes in place (a verdict re-judged): the next refresh follows a feed
    for j, v in enumerate(vs):
        if v.klass == "ok":
            vs[j] = msgspec.structs.replace(v, klass="tls")
    q.feed([])
    assert [enc(q.incident(i, vs)) for i in incidents] == [enc(scanned(i)) for i in incidents]
