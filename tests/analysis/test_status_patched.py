"""The published status patched round by round (issue #13: window.LiveState.country_rows keeps
each country's rows and builds again only the cells written since; quorum.Quorum.status looks
again only at the rows that moved) is byte for byte the status built from scratch.

A fuzzed, fixed-seed sequence of rounds drives a real AnalysedStore (embedded chdb) with the
quorum gate and a VoiceBook tailing a real provenance file, as the analysis process does:
rounds that feed some countries and publish others (or both), blocks that begin and end on
some networks (cells change class; incidents open and close, so the cells they explain move),
measurements whose provenance line is lost or comes late, a probe trusted then untrusted (both
a generation change: everything counted again), the day window sliding past old voices, a
restart (the grid read back from the store). After
every round each published country is compared with the rows built again from the whole
grid (queries.status_rows) and gated by a new Quorum that counts every cell from the window.
"""

from __future__ import annotations

import json
import random

import msgspec

from netvigil.analysis import queries
from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.analysis.incidents.quorum import Quorum, VoiceBook
from netvigil.collector.provenance import Provenance, ProvenanceLog
from tests.analysis.factory import at, round_of

NETWORKS = {"RU": ["AS12389", "AS8359", "AS3216"], "BY": ["AS6697", "AS25106"], "KZ": ["AS9198"]}
SERVICES = ("twitter", "facebook")
BLOCKS = ("tls.reset_after_hello", "dns.nxdomain")
PROBES = [(f"nvp_{i}", f"198.51.100.{i * 8}/24") for i in range(5)]


def _from_scratch(obs: AnalysedStore, book: VoiceBook, ccs: list[str]):
    """The published rows as a first round would build them: every cell of the countries'
    grids built again, every backing counted from the window by a new gate."""
    rows, held = [], {}
    for cc in ccs:
        incidents = obs.live.country_incidents(cc)
        held.update(incidents)
        cells = sorted(obs.live.status_rows(cc, None, None), key=lambda d: (d["asn"], d["service"]))
        assert [(d["asn"], d["service"]) for d in cells] == sorted(k[1:] for k in obs.live.status if k[0] == cc)
        rows += queries.status_rows(cells, [i for i in incidents.values() if i.end is None])
    return rows, Quorum(book, 2).status(rows, obs.live.verdicts, held)


def _trust(registry, trusted: set[str]) -> None:
    registry.write_text("".join(json.dumps({"probe_id": p, "trusted": p in trusted}) + "\n" for p, _ in PROBES))


def test_patched_status_is_the_status_built_from_scratch(tmp_path):
    rng = random.Random(20261206)
    collector = tmp_path / "collector"
    collector.mkdir()
    provenance = ProvenanceLog(collector / "provenance.jsonl")
    registry = collector / "probes.jsonl"
    _trust(registry, set())
    book = VoiceBook(collector)
    book.reload_trust()
    gate = Quorum(book, 2)
    blocked = {(cc, asn, s): None for cc, asns in NETWORKS.items() for asn in asns for s in SERVICES}
    lost: list[str] = []
    compared = reused = rebuilt = kept = generations = spans_moved = 0
    spans_before: dict[str, dict] = {}
    shown: dict[str, list] = {}
    kinds: set[tuple] = set()
    obs = AnalysedStore(tmp_path / "store")
    try:
        obs.gate, obs.on_verdicts = gate.incident, gate.feed
        for r in range(64):
            if r == 40:  # a restart: the grid and incidents are read back from the store
                obs.close()
                obs = AnalysedStore(tmp_path / "store")
                assert obs.live.status is None
                gate = Quorum(book, 2)
                obs.gate, obs.on_verdicts = gate.incident, gate.feed
            when = at(r, cadence_min=45)  # 64 rounds: 48 h, the day window slides
            for cell in blocked:  # blocks begin and end: cells change class, incidents open and close
                if rng.random() < 0.12:
                    blocked[cell] = rng.choice(BLOCKS) if blocked[cell] is None else None
            fed = rng.sample(sorted(NETWORKS), rng.randint(1, len(NETWORKS)))
            ms = [m for cc in fed for asn in NETWORKS[cc] if rng.random() < 0.6
                  for m in round_of(when, asn, cc=cc, services=SERVICES,
                                    techniques={s: blocked[(cc, asn, s)] for s in SERVICES})]
            assert obs.add(ms) == len(ms)
            uids = [m.measurement_uid for m in ms]
            said = []
            for uid in uids:
                if rng.random() < 0.1:
                    lost.append(uid)  # its provenance line comes late, or never
                else:
                    probe, net = rng.choice(PROBES)
                    said.append(Provenance(uid=uid, network=net, probe_id=probe, claim="match"))
            if lost and r % 9 == 4:  # a late line: a voice already given changed
                probe, net = rng.choice(PROBES)
                said.append(Provenance(uid=lost.pop(0), network=net, probe_id=probe, claim="match"))
            if r % 16 == 7:  # a probe trusted, later untrusted
                _trust(registry, {PROBES[0][0]} if r % 32 == 7 else set())
            provenance.append(said)
            before = book.generation
            book.tail()
            book.from_log(uids)
            book.reload_trust()
            generations += book.generation != before
            if r % 3 == 0:
                obs.refresh()
            published = sorted(set(fed) if rng.random() < 0.5 else rng.sample(sorted(NETWORKS), rng.randint(1, 3)))
            rows, held = [], {}
            for cc in published:
                mine = obs.status(country=cc)
                last = getattr(obs.live._published.get(cc), "span_of", None)
                spans_moved += cc in spans_before and last != spans_before[cc]
                spans_before[cc] = last
                again = obs.status(country=cc)
                assert all(a is b for a, b in zip(mine, again))  # nothing written since: the same rows
                kept += sum(a is b for a, b in zip(mine, shown.get(cc, ())))  # not built again
                shown[cc] = mine
                rows += mine
                held.update(obs.live.country_incidents(cc))
            got = gate.status(rows, obs.live.verdicts, held)
            reused += len(rows) - len(gate.moved)
            rebuilt += len(gate.moved)
            want_rows, want = _from_scratch(obs, book, published)
            assert msgspec.json.encode(rows) == msgspec.json.encode(want_rows), r
            assert msgspec.json.encode(got) == msgspec.json.encode(want), r
            compared += len(rows)
            kinds |= {(g.confirmed, g.incident_id is not None, g.klass != "ok") for g in got}
        # what the sequence went through, so that the comparisons above meant something
        assert generations >= 4 and spans_moved >= 2, (generations, spans_moved)
        assert min(reused, rebuilt, kept) > 50, (reused, rebuilt, kept)
        # published and unconfirmed cells, blocked ones, ones an incident explains
        assert {(True, True, True), (False, False, True), (True, False, False)} <= kinds, kinds
    finally:
        obs.close()
    assert compared > 500
