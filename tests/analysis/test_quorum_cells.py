"""The status cells' backing counted as verdicts are written (analysis/incidents/cell_voices.py)
agrees with the count from scratch (`recount`), round after round (issue #13):

- on every recorded lab run of tests/data/lab and the bundled russia-2022 recording, judged
  batch by batch as the observatory does (provisional verdicts of open rounds, replaced by
  their final ones, whose class may differ), with voices drawn from a seeded generator;
- on a fuzzed, derandomised sequence: verdicts out of time order, re-judged uids that change
  class, cells whose day window slides past old voices, a probe trusted then untrusted, a
  measurement's provenance arriving late.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import msgspec
import pytest

from netvigil.analysis.incidents import cell_voices
from netvigil.analysis.incidents.cell_voices import CELL_COUNT_CAP, recount
from netvigil.analysis.incidents.quorum import OPERATOR, Quorum, Voice
from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.engine import Judge, VerdictEngine, line_with_uid
from netvigil.analysis.incidents.window import stored_form
from netvigil.model.records import StatusRow, Verdict
from netvigil.report.replay import load_run

DATA = Path(__file__).resolve().parents[1] / "data" / "lab"
RECORDED = Path(__file__).resolve().parents[2] / "src" / "netvigil" / "data" / "recorded" / "russia-2022"
RUNS = sorted(p for p in DATA.iterdir() if (p / "measurements.jsonl.zst").exists()) + [RECORDED]


class Book:
    """uid -> voice, as quorum.VoiceBook answers; `generation` moves when a voice changes."""

    def __init__(self):
        self.of: dict[str, Voice] = {}
        self.generation = 0
        self.asked = 0

    def voices(self, uids):
        self.asked += len(uids)
        return {u: self.of.get(u, OPERATOR) for u in uids}


class Window:
    """The live window: a uid's latest verdict; status rows as LiveState keeps them."""

    def __init__(self):
        self.by_uid: dict[str, Verdict] = {}

    def put(self, vs: list[Verdict]) -> None:
        for v in vs:
            self.by_uid[v.measurement_uid] = stored_form(v)

    def since(self, cc: str, since: str) -> list[Verdict]:
        return sorted((v for v in self.by_uid.values() if v.probe_cc == cc and v.measurement_start_time >= since),
                      key=lambda v: (v.measurement_start_time, v.measurement_uid))

    def rows(self, countries: set[str]) -> list[StatusRow]:
        cells: dict[tuple, list] = {}
        for v in self.by_uid.values():
            if v.path != "direct" or not v.service or v.probe_cc not in countries:
                continue
            key = (v.probe_cc, v.probe_asn, v.service)
            t = v.measurement_start_time
            cur = cells.setdefault(key, ["", "", "", 0])
            if t > cur[0] or (t == cur[0] and v.measurement_uid <= cur[1]):
                cur[:3] = [t, v.measurement_uid, v.klass]
            cur[3] += 1
        return [StatusRow(country=cc, asn=asn, service=svc, klass=c[2], last_measurement=c[0], measurements=c[3])
                for (cc, asn, svc), c in sorted(cells.items())]


def agree(quorum: Quorum, book: Book, window: Window, countries: set[str]) -> int:
    """Compare the incremental status with the recount for COUNTRIES' rows; how many rows."""
    rows = window.rows(countries)
    got = quorum.status(rows, window.since, {})
    full = recount(rows, window.since, lambda us: {u: book.of.get(u, OPERATOR) for u in us},
                   max(quorum.quorum, CELL_COUNT_CAP))
    for r, g in zip(rows, got):
        b = full[(r.country, r.asn, r.service)]
        if b.operator:
            assert g == r
        else:
            assert (g.confirmed, g.independent_probes, g.source_networks) == (
                b.confirmed(quorum.quorum), b.independent_probes, b.source_networks), (r, b, g)
    return len(rows)


def voices_for(rng: random.Random, n_probes: int, n_nets: int) -> list[Voice]:
    """A pool of voices: probes on their own networks, one moving between two, an anonymous
    client, a liar whose claim is contradicted, a lost line."""
    pool = [Voice(f"nvp_{i}", f"net{rng.randrange(n_nets)}") for i in range(n_probes)]
    pool += [Voice("nvp_roam", "net0"), Voice("nvp_roam", "net1"), Voice("net:net9", "net9"),
             Voice("nvp_liar", "net8", counted=False), Voice("unknown", "unknown")]
    return pool


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_incremental_agrees_with_recount_on_recorded_runs(run):
    rng = random.Random(run.name)  # derandomised: the same voices every time
    rules = load_rules()
    judge, engine = Judge(rules), VerdictEngine(rules)
    book, window = Book(), Window()
    quorum = Quorum(book, 2)
    pool = voices_for(rng, 6, 4)
    ms = load_run(run)
    checked = fed = 0
    for i in range(0, len(ms), 37):  # batches that cut rounds in pieces, as the log does
        batch = ms[i:i + 37]
        written = []
        for m in batch:
            line_with_uid(m, None)
            if rng.random() < 0.9:  # a few are the operator's own (no voice row)
                book.of[m.measurement_uid] = rng.choice(pool)
            written += [v for _, v in engine.push(judge(m))]
        written += [v for _, v in engine.pending()]
        window.put(written)
        quorum.feed(written)
        fed += len(written)
        checked += agree(quorum, book, window, {m.probe_cc for m in batch})
    final = [v for _, v in engine.flush()]
    window.put(final)
    quorum.feed(final)
    checked += agree(quorum, book, window, {v.probe_cc for v in window.by_uid.values()})
    assert checked > 0
    # each verdict counted once, when written (and a country's window once, when first asked):
    # not the window again every round
    assert book.asked <= fed + len(final) + len(window.by_uid)


def fuzz(seed: int, steps: int, recent: int | None = None, partial: bool = False) -> Quorum:
    """Feed a derandomised sequence and compare after every step; `recent`: judge again only
    among the newest uids (as a live round is); `partial`: ask for one country or both,
    whatever was fed (a verdict judged again may belong to a country not published this
    round: what was remembered of its cells must not be reused stale)."""
    rng = random.Random(seed)
    book, window = Book(), Window()
    quorum = Quorum(book, 3)
    pool = voices_for(rng, 14, 6)
    asns, services, classes = ["AS1", "AS2", "AS3"], ["twitter", "facebook"], ["ok", "tls", "dns", "tls"]
    uids: list[str] = []
    minute = 0
    for step in range(steps):
        written = []
        for _ in range(rng.randrange(1, 25)):
            choices = uids[-recent:] if recent else uids
            again = window.by_uid.get(rng.choice(choices)) if choices and rng.random() < 0.2 else None
            if again is not None:  # a uid judged again: its class may change
                v = msgspec.structs.replace(again, klass=rng.choice(classes))
            else:
                minute += rng.randrange(0, 40)  # ~9 days in all: windows slide past old voices
                back = rng.randrange(0, 300) if rng.random() < 0.15 and not recent else 0  # some out of order
                t = 1_700_000_000 + 60 * max(0, minute - back)
                when = dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                uid = f"u{len(uids):05d}"
                uids.append(uid)
                v = Verdict(measurement_uid=uid, measurement_start_time=when, probe_cc=rng.choice(["DE", "FR"]),
                            probe_asn=rng.choice(asns), service=rng.choice(services), input=None, domain=None,
                            klass=rng.choice(classes), path="vpn" if rng.random() < 0.1 else "direct")
                if rng.random() < 0.95:
                    book.of[uid] = rng.choice(pool)
            written.append(v)
        if step % 40 == 17:  # the operator trusts a probe, later takes it back; a late provenance line
            who = rng.choice(pool)
            trusted = msgspec.structs.replace(who, trusted=not who.trusted)
            book.of = {u: (trusted if v == who else v) for u, v in book.of.items()}
            pool = [trusted if v == who else v for v in pool]
            lost = [u for u in uids if u not in book.of]
            if lost:
                book.of[lost[0]] = rng.choice(pool)
            book.generation += 1
        window.put(written)
        quorum.feed(written)
        if partial:
            agree(quorum, book, window, rng.choice([{"DE"}, {"FR"}, {"DE", "FR"}]))
        else:
            agree(quorum, book, window, {v.probe_cc for v in written} if step % 7 else {"DE", "FR"})
    rows = window.rows({"DE", "FR"})
    assert {r.klass for r in rows} >= {"ok", "tls"}
    got = quorum.status(rows, window.since, {})
    assert any(g.confirmed for g in got) and any(not g.confirmed for g in got)  # both kinds were compared
    return quorum


def test_incremental_agrees_with_recount_on_a_fuzzed_sequence():
    fuzz(20261206, 160)


def test_incremental_agrees_when_a_round_asks_for_other_countries_than_it_fed():
    fuzz(20261207, 200, partial=True)
    fuzz(11, 200, recent=12, partial=True)


def test_a_round_looks_again_only_at_the_cells_that_changed():
    """Rows unchanged and nothing fed: no row is counted or built again (the same published
    rows come back); one verdict fed: only its cell moves, and the result still agrees."""
    book, window = Book(), Window()
    quorum = Quorum(book, 2)
    for i, (cc, asn) in enumerate([("DE", "AS1"), ("DE", "AS2"), ("FR", "AS3"), ("FR", "AS4")] * 3):
        uid = f"v{i:03d}"
        book.of[uid] = Voice(f"nvp_{i % 5}", f"net{i % 4}")
        v = Verdict(measurement_uid=uid, measurement_start_time=f"2026-12-01 10:{i:02d}:00", probe_cc=cc,
                    probe_asn=asn, service="twitter", input=None, domain=None, klass="tls", path="direct")
        window.put([v])
        quorum.feed([v])
    first = quorum.status(window.rows({"DE", "FR"}), window.since, {})
    assert len(quorum.moved) == len(first) == 4
    again = quorum.status(window.rows({"DE", "FR"}), window.since, {})
    assert quorum.moved == set() and all(a is b for a, b in zip(first, again))
    book.of["late"] = Voice("nvp_new", "net_new")
    v = Verdict(measurement_uid="late", measurement_start_time="2026-12-01 11:00:00", probe_cc="FR",
                probe_asn="AS3", service="twitter", input=None, domain=None, klass="tls", path="direct")
    window.put([v])
    quorum.feed([v])
    assert agree(quorum, book, window, {"DE", "FR"}) == 4
    assert quorum.moved == {("FR", "AS3", "twitter")}


def test_memory_is_bounded_and_folded_uids_still_count(monkeypatch):
    """Past TRACKED_MAX the oldest uids are folded into their voice's newest time: still
    counted the same (a live round is judged again only while it is recent)."""
    monkeypatch.setattr(cell_voices, "TRACKED_MAX", 60)
    quorum = fuzz(7, 120, recent=10)
    assert len(quorum.cells.of_uid) <= 60 and quorum.cells.listed <= 60
    assert any(e.folded for by_voice in quorum.cells.cells.values() for e in by_voice.values())
