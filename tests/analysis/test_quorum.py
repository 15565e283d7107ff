"""The quorum's counting (analysis/incidents/quorum.py), on its own: who backs a claim and what may be announced."""

from __future__ import annotations

import msgspec
import pytest

from netvigil.analysis.incidents.quorum import (LOST, OPERATOR, Quorum, Voice, VoiceBook, backing, independent, supporting,
                                      voice_row)
from netvigil.collector.provenance import Provenance, ProvenanceLog
from netvigil.errors import UsageError
from netvigil.model.records import Evidence, Incident, IncidentChange, NetworkSpan, Verdict


def test_independent_probes_need_distinct_ids_on_distinct_networks():
    assert independent([]) == 0
    assert independent([("a", "n1"), ("b", "n1"), ("c", "n1")]) == 1  # many ids, one network
    assert independent([("a", "n1"), ("a", "n2"), ("a", "n3")]) == 1  # one probe moving between networks
    assert independent([("a", "n1"), ("b", "n2")]) == 2
    # a greedy pick of (a, n1) first would leave b without a network: the matching finds 2
    assert independent([("a", "n1"), ("a", "n2"), ("b", "n1")]) == 2
    assert independent([("a", "n1"), ("a", "n1")]) == 1


def test_backing_counts_voices_not_measurements():
    one = Voice("nvp_a", "198.51.100.0/24")
    assert backing([one] * 500) == backing([one])
    b = backing([one, Voice("nvp_b", "203.0.113.0/24"), Voice("net:192.0.2.0/24", "192.0.2.0/24")])
    assert (b.independent_probes, b.source_networks, b.trusted, b.operator) == (3, 3, False, False)
    assert b.confirmed(3) and not b.confirmed(4)
    # a contradicted ASN claim is not counted; a trusted voice confirms alone
    liar = Voice("nvp_c", "192.0.2.0/24", counted=False)
    assert backing([one, liar]).independent_probes == 1
    assert backing([Voice("nvp_t", "192.0.2.0/24", trusted=True)]).confirmed(5)
    assert backing([OPERATOR]).operator and not backing([OPERATOR, one]).operator
    assert backing([LOST, LOST]).independent_probes == 1  # lost provenance never adds a voice


def test_voice_book_reads_provenance_trust_and_the_store(tmp_path):
    col = tmp_path / "collector"
    log = ProvenanceLog(col / "provenance.jsonl")
    log.append([Provenance("u1", "198.51.100.0/24", "nvp_a"), Provenance("u2", "203.0.113.0/24", None),
                Provenance("u3", "192.0.2.0/24", None, trusted=True),
                Provenance("u4", "192.0.2.0/24", "nvp_b", claim="mismatch")])
    (col / "probes.jsonl").write_bytes(b'{"probe_id":"nvp_a","secret_sha256":"x","enrolled":"t","trusted":false}\n')
    stored = {"old": {"uid": "old", "probe_id": "nvp_z", "network": "10.9.8.0/24", "trusted": 0, "claim": "match"},
              "gone": {"uid": "gone", "probe_id": "", "network": "", "trusted": 0, "claim": "unknown"}}
    book = VoiceBook(col, lookup=lambda uids: {u: stored[u] for u in uids if u in stored})
    assert book.reload_trust() is False and book.tail() == []
    rows = book.from_log(["u1", "u2", "u3", "u4", "u5", "old"])
    assert [r["uid"] for r in rows] == ["u1", "u2", "u3", "u4", "u5"]  # "old" keeps its stored row
    assert rows[4] == voice_row("u5", None) and rows[4]["network"] == ""
    v = book.voices(["u1", "u2", "u3", "u4", "u5", "old", "gone", "imported"])
    assert v["u1"] == Voice("nvp_a", "198.51.100.0/24")
    assert v["u2"] == Voice("net:203.0.113.0/24", "203.0.113.0/24")
    assert v["u3"].trusted and not v["u4"].counted
    assert v["u5"] == LOST and v["gone"] == LOST and v["old"] == Voice("nvp_z", "10.9.8.0/24")
    assert v["imported"] == OPERATOR  # never came through the collector: the operator's own data
    # u5's provenance is written after its log line was read: matched late
    log.append([Provenance("u5", "100.64.0.0/24", "nvp_c")])
    assert [p.uid for p in book.tail()] == ["u5"]
    assert book.voices(["u5"])["u5"] == Voice("nvp_c", "100.64.0.0/24")
    # the operator trusts nvp_a: the registry's last line of an id wins
    with open(col / "probes.jsonl", "ab") as fh:
        fh.write(b'{"probe_id":"nvp_a","secret_sha256":"x","enrolled":"t","trusted":true}\n')
    assert book.registry_moved() and book.reload_trust() is True and not book.registry_moved()
    assert book.voices(["u1"])["u1"].trusted


def verdict(uid: str, asn: str, t: str, klass: str = "tls", service: str = "twitter") -> Verdict:
    return Verdict(measurement_uid=uid, measurement_start_time=t, probe_cc="DE", probe_asn=asn, service=service,
                   input=None, domain=None, klass=klass)


def incident(end: str | None = None) -> Incident:
    return Incident(id="i1", country="DE", service="twitter", kind="censorship", start="2026-12-06 09:00:00",
                    end=end, networks=[NetworkSpan(asn="AS3320", technique="tls.reset", start="2026-12-06 09:00:00")],
                    evidence=Evidence(measurement_uids=["a"], vantage_networks=1, rules_version="r", measurement_count=3))


class Book:
    generation = 0

    def __init__(self, voices: dict[str, Voice]):
        self.v = voices

    def voices(self, uids):
        return {u: self.v.get(u, OPERATOR) for u in uids}


def test_incident_is_confirmed_by_agreeing_probes_only():
    vs = [verdict("a", "AS3320", "2026-12-06 09:10:00"), verdict("b", "AS3320", "2026-12-06 09:20:00"),
          verdict("ok", "AS3320", "2026-12-06 09:30:00", klass="ok"),  # does not agree
          verdict("fb", "AS3320", "2026-12-06 09:30:00", service="facebook"),  # another claim
          verdict("early", "AS3320", "2026-12-06 08:00:00"), verdict("else", "AS3209", "2026-12-06 09:30:00")]
    assert supporting(incident(), vs) == ["a", "b"]
    voices = {"a": Voice("nvp_a", "n1"), "b": Voice("nvp_a", "n1"), "ok": Voice("nvp_b", "n2"),
              "fb": Voice("nvp_c", "n3"), "early": Voice("nvp_d", "n4"), "else": Voice("nvp_e", "n5")}
    q = Quorum(Book(voices), 2)
    gated = q.incident(incident(), vs)
    assert not gated.confirmed and gated.evidence.independent_probes == 1 and gated.evidence.source_networks == 1
    voices["b"] = Voice("nvp_b", "n2")
    gated = q.incident(incident(), vs)
    assert gated.confirmed and gated.evidence.independent_probes == 2
    assert gated.evidence.measurement_count == 3  # measurement counts stay what they were
    # the operator's own data is published as is
    assert Quorum(Book({}), 2).incident(incident(), vs) == incident()
    with pytest.raises(UsageError):
        Quorum(Book({}), 0)


def test_announcements_wait_for_confirmation():
    q = Quorum(Book({}), 2)
    q.seed([])
    unconfirmed = msgspec.structs.replace(incident(), confirmed=False)
    confirmed = incident()
    start = IncidentChange("start", unconfirmed, unconfirmed.start)
    assert q.changes([start]) == []
    # confirmed later, as a change: announced as its start, once
    out = q.changes([IncidentChange("change", confirmed, "2026-12-06 10:00:00")])
    assert [(c.event, c.incident.id) for c in out] == [("start", "i1")]
    again = q.changes([IncidentChange("change", confirmed, "2026-12-06 10:05:00", detail="x")])
    assert [c.event for c in again] == ["change"]
    ended = msgspec.structs.replace(confirmed, end="2026-12-06 11:00:00")
    assert [c.event for c in q.changes([IncidentChange("end", ended, ended.end)])] == ["end"]
    # an incident that ends before it is ever confirmed is never announced
    other = msgspec.structs.replace(unconfirmed, id="i2", end="2026-12-06 11:00:00")
    assert q.changes([IncidentChange("start", other, other.start), IncidentChange("end", other, other.end)]) == []


def test_an_announced_incident_that_loses_its_quorum_is_withdrawn():
    q = Quorum(Book({}), 3)
    q.seed([])
    confirmed = incident()
    assert [c.event for c in q.changes([IncidentChange("start", confirmed, confirmed.start)])] == ["start"]
    lost = msgspec.structs.replace(confirmed, confirmed=False, evidence=msgspec.structs.replace(
        confirmed.evidence, independent_probes=1, source_networks=1))
    out = q.changes([IncidentChange("change", lost, "2026-12-06 10:00:00", detail="no longer backed")])
    assert [(c.event, c.incident.id, c.incident.confirmed) for c in out] == [("withdrawn", "i1", False)]
    assert "1 of the 3 required" in out[0].detail
    # withdrawn once; what it does while unconfirmed is not announced, its end neither
    assert q.changes([IncidentChange("change", lost, "2026-12-06 10:05:00", detail="x")]) == []
    # backed again: announced again as a start
    again = q.changes([IncidentChange("change", confirmed, "2026-12-06 10:10:00")])
    assert [c.event for c in again] == ["start"]
    # losing it as it ends is a withdrawal too, never an end told as fact
    ended = msgspec.structs.replace(lost, end="2026-12-06 11:00:00")
    assert [c.event for c in q.changes([IncidentChange("end", ended, ended.end)])] == ["withdrawn"]


def test_rows_not_written_are_given_again(tmp_path):
    """A round whose `voices` insert fails is tried again: the same rows come back."""
    col = tmp_path / "collector"
    ProvenanceLog(col / "provenance.jsonl").append([Provenance("u1", "198.51.100.0/24", "nvp_a")])
    book = VoiceBook(col)
    book.tail()
    first = book.from_log(["u1", "u2"])
    assert book.from_log(["u1", "u2"]) == []  # written: not again
    book.rollback([r["uid"] for r in first], [])
    assert book.from_log(["u1", "u2"]) == first


def test_status_cells_are_backed_by_agreeing_voices_in_their_day():
    from netvigil.model.records import StatusRow

    def row(asn: str, klass: str, incident_id: str | None = None) -> StatusRow:
        return StatusRow(country="DE", asn=asn, service="twitter", klass=klass, last_measurement="2026-12-06 10:00:00",
                         measurements=99, incident_id=incident_id)

    vs = [verdict(f"a{i}", "AS3320", f"2026-12-06 09:{i:02d}:00") for i in range(20)]  # 20 probes agree
    vs += [verdict("b0", "AS3209", "2026-12-06 09:00:00"), verdict("b1", "AS3209", "2026-12-06 09:01:00")]
    vs += [verdict("c0", "AS1", "2026-12-06 09:00:00"), verdict("c1", "AS1", "2026-12-06 09:00:00", klass="ok"),
           verdict("c2", "AS1", "2026-12-04 09:00:00")]  # disagrees, or older than the cell's day
    vs += [verdict("d0", "AS2", "2026-12-06 09:00:00")]
    voices = {f"a{i}": Voice(f"nvp_{i}", f"n{i}") for i in range(20)}
    voices |= {"b0": Voice("nvp_b", "m1"), "b1": Voice("nvp_b", "m1"), "c0": Voice("nvp_c", "k1"),
               "c1": Voice("nvp_x", "k2"), "c2": Voice("nvp_y", "k3")}  # d0: the operator's own
    q = Quorum(Book(voices), 2)
    linked = msgspec.structs.replace(incident(), id="inc")
    rows = [row("AS3320", "tls"), row("AS3209", "tls"), row("AS1", "tls", incident_id="inc"), row("AS2", "tls")]
    got = {r.asn: r for r in q.status(rows, lambda cc, since: [v for v in vs if v.measurement_start_time >= since],
                                      {"inc": msgspec.structs.replace(linked, confirmed=False)})}
    assert got["AS3320"].confirmed and got["AS3320"].independent_probes >= 8  # counted at least up to the cap
    b = got["AS3209"]
    assert not b.confirmed and (b.independent_probes, b.source_networks, b.measurements) == (1, 1, 99)
    c = got["AS1"]  # one agreeing voice; its incident is not published: no link
    assert not c.confirmed and c.independent_probes == 1 and c.incident_id is None
    assert got["AS2"] == rows[3]  # the operator's own data, as the CLI shows it
    # a published incident that explains the cell backs it
    again = q.status(rows[2:3], lambda cc, since: vs, {"inc": linked})
    assert again[0].confirmed and again[0].incident_id == "inc"


def test_a_restart_goes_on_where_the_provenance_file_was_read_to(tmp_path):
    col = tmp_path / "collector"
    log = ProvenanceLog(col / "provenance.jsonl")
    log.append([Provenance("u1", "198.51.100.0/24", "nvp_a"), Provenance("u2", "203.0.113.0/24", "nvp_b")])
    book = VoiceBook(col)
    book.tail()
    book.from_log(["u1"])  # u1 analysed; u2's measurement is not read from the log yet
    book.save()
    log.append([Provenance("u3", "192.0.2.0/24", "nvp_c")])
    # a damaged line before the saved offset would be read again by a restart from the start
    with open(col / "provenance.jsonl", "r+b") as fh:
        fh.write(b"\x00" * 10)
    again = VoiceBook(col)
    assert again._offset == book._offset  # not from the start
    again.tail()
    rows = {r["uid"]: r for r in again.from_log(["u2", "u3"])}
    assert rows["u2"]["probe_id"] == "nvp_b" and rows["u3"]["probe_id"] == "nvp_c"  # waiting lines kept
    assert "u1" not in again._pending  # matched before the save: not read again
    # a provenance file shorter than the saved offset was replaced: read from the start
    (col / "provenance.jsonl").write_bytes(b"")
    ProvenanceLog(col / "provenance.jsonl").append([Provenance("u9", "100.64.0.0/24", "nvp_z")])
    fresh = VoiceBook(col)
    fresh.tail()
    assert fresh.from_log(["u9"])[0]["probe_id"] == "nvp_z"
