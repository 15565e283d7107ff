"""The live Observatory keeps the refresh window, the status grid, the incidents and the recent
uids in memory (analysis/incidents/window.py). What it answers must be what the store says: checked
against a fresh Observatory on the same directory (everything re-read from the store) and
against refreshes forced to re-read their verdicts, on the recorded lab run russia-2022 fed
as the collector feeds it (half rounds), with late data, resubmissions and a restart."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from netvigil.analysis.incidents.builder import build_incidents
from netvigil.analysis.rules import load_rules
from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.report.replay import rounds
from tests.analysis.factory import at, round_of
from tests.recorded_run import run_measurements

LAB = Path(__file__).resolve().parents[1] / "data" / "lab" / "russia-2022"


@pytest.fixture(scope="module")
def lab_rounds():
    return [list(r) for _, r in rounds(run_measurements(LAB))]  # decoded once per test process


def _copy(ms):
    """Fresh measurements for a store to add: adding sets only the envelope's uid (the judge
    slims a copy of its own), so a shallow copy is enough and each store assigns its own
    uids (a JSON round trip of the 20-40 KB trees cost 2 s of this file)."""
    return [msgspec.structs.replace(m) for m in ms]


def _enc(items):
    return [msgspec.json.encode(x) for x in items]


def _feed(obs, rs, *, forget: bool = False):
    """Half rounds with a refresh after each; `forget`: drop the held window before each
    refresh so it re-reads its verdicts from the store."""
    events = []
    for r in rs:
        h = len(r) // 2
        for part in (r[:h], r[h:]):
            obs.add(_copy(part))
            if forget:
                obs.live.windows.clear()
                obs.live.incidents.clear()
                obs.live.latest.clear()
            events.append([(c.event, c.incident.id, c.at, c.detail, msgspec.json.encode(c.incident)) for c in obs.refresh()])
    return events


def test_memory_and_store_reads_give_the_same_events_and_incidents(tmp_path, lab_rounds):
    with AnalysedStore(tmp_path / "a") as a, AnalysedStore(tmp_path / "b") as b:
        ea, eb = _feed(a, lab_rounds), _feed(b, lab_rounds, forget=True)
        assert ea == eb
        assert sum(map(len, ea)) >= 3  # the run's incidents start (and change)
        assert _enc(a.incidents()) == _enc(b.incidents())
        assert {i.service for i in a.incidents()} >= {"twitter", "facebook"}


def test_status_from_memory_is_what_the_store_says(tmp_path, lab_rounds):
    obs = AnalysedStore(tmp_path / "obs")
    _feed(obs, lab_rounds[:8])
    obs.add(_copy(lab_rounds[2]))  # a resubmission: no double count
    live = obs.status()
    live_ru = obs.status(country="RU")
    obs.close()
    with AnalysedStore(tmp_path / "obs") as again:  # seeded from a GROUP BY over the store
        assert _enc(again.status()) == _enc(live)
        assert _enc(again.status(country="RU")) == _enc(live_ru)
        asn = live[0].asn
        assert _enc(again.status(asn=asn.removeprefix("AS"))) == _enc([s for s in live if s.asn == asn])
    direct = [m for r in lab_rounds[:8] for m in r if (m.annotations or {}).get("path", "direct") == "direct"]
    assert sum(s.measurements for s in live) <= len(direct)
    assert {s.service for s in live} >= {"twitter", "facebook"}
    assert any(s.incident_id for s in live)  # the ongoing incident is joined in


def test_verdicts_written_by_another_hand_are_in_the_status(tmp_path):
    """A store whose tables were filled directly (bench_api_status, a rebuild elsewhere) is not
    an empty one: its status comes from the store."""
    from netvigil.analysis import queries
    from netvigil.analysis.verdicts.engine import verdicts

    vs = list(verdicts(round_of(at(0), "AS7")))
    with AnalysedStore(tmp_path / "obs") as obs:
        obs.db.insert("verdicts", [queries.verdict_row(v, "r1") for v in vs])
    with AnalysedStore(tmp_path / "obs") as obs:
        assert not obs.live.born_empty
        assert {(s.asn, s.service) for s in obs.status()} == {("AS7", "twitter"), ("AS7", "control")}


def test_resubmission_is_refused_from_memory_and_after_a_restart(tmp_path):
    old = round_of(at(0), "AS1")  # 2022: far older than the data below, outside the held uids
    new = [m for r in range(4) for m in round_of(at(600 + r), "AS2")]
    obs = AnalysedStore(tmp_path / "obs")
    assert obs.add(_copy(old)) == len(old)
    assert obs.add(_copy(new)) == len(new)
    assert obs.add(_copy(new)) == 0
    obs.close()
    with AnalysedStore(tmp_path / "obs") as again:
        assert again.live.uid_floor > old[0].measurement_start_time  # `old` is answered by the store
        assert again.add(_copy(new)) == 0
        assert again.add(_copy(old)) == 0
        assert len(again.verdicts(limit=None)) == len(old) + len(new)


def test_held_uids_stay_within_the_window_and_older_ones_are_still_refused(tmp_path):
    days = [round_of(at(144 * d), "AS2") for d in range(10)]  # one round a day for ten days
    with AnalysedStore(tmp_path / "obs") as obs:
        for r in days:
            assert obs.add(_copy(r)) == len(r)
        assert len(obs.live.uid_days) <= 5  # the window (3 days) and a little
        assert obs.live.uid_floor > days[5][0].measurement_start_time
        assert sum(obs.add(_copy(r)) for r in days) == 0  # old ones answered by the store
        assert len(obs.verdicts(limit=None)) == sum(map(len, days))


def test_an_unchanged_incident_is_not_written_again(tmp_path):
    with AnalysedStore(tmp_path / "obs") as obs:
        for r in range(8):
            obs.add(round_of(at(r), "AS12389", techniques={"twitter": "tls.reset_after_hello" if r >= 2 else None}))
            obs.refresh()
        # each write carries a new version (background merges may fold the rows at any time)
        written = lambda: obs.db.query(f"SELECT id, version FROM {obs.table('incidents')} FINAL")  # noqa: E731
        before = written()
        assert len(before) == 1
        # a round of another network of the country: the country is refreshed, the incident is the same
        obs.add(round_of(at(8), "AS8359"))
        assert obs.refresh() == []
        assert written() == before
        obs.add(round_of(at(9), "AS12389", techniques={"twitter": "tls.reset_after_hello"}))
        obs.refresh()
        after = written()  # it grew by a round: written once more
        assert after[0]["id"] == before[0]["id"] and int(after[0]["version"]) > int(before[0]["version"])
        assert len(obs.incidents()) == 1


def test_late_data_older_than_the_held_window_is_read_from_the_store(tmp_path):
    feed = [round_of(at(r), "AS12389", techniques={"twitter": "tls.reset_after_hello" if 2 <= r < 6 else None})
            for r in list(range(8)) + list(range(600, 610))]  # four days: the window holds the last three
    late = [m for r in (100, 101, 102) for m in round_of(at(r), "AS8359", techniques={"twitter": "dns.nxdomain"})]
    with AnalysedStore(tmp_path / "a") as a, AnalysedStore(tmp_path / "b") as b:
        for obs, forget in ((a, False), (b, True)):
            out = []
            for r in feed:
                obs.add(_copy(r))
                out.append(obs.refresh())
            held_since = obs.live.windows["RU"].since
            obs.add(_copy(late))
            if forget:
                obs.live.windows.clear()
            out.append(obs.refresh())
            obs.result = [[(c.event, c.incident.id, c.at) for c in x] for x in out]
        assert held_since > at(100)  # the late rounds were not held: read from the store
        assert a.result == b.result
        assert ("start", at(100)) in [(e, t) for e, _, t in a.result[-1]]  # the late incident, back-dated
        assert _enc(a.incidents()) == _enc(b.incidents()) and len(a.incidents()) == 2


def test_span_cache_gives_the_same_incidents(lab_rounds):
    from netvigil.analysis.verdicts.engine import verdicts

    rules = load_rules()
    vs = sorted(verdicts([m for r in lab_rounds for m in r]), key=lambda v: (v.measurement_start_time, v.measurement_uid))
    plain = build_incidents(vs, rules.incidents, rules.version)
    cache: dict = {}
    first = build_incidents(vs, rules.incidents, rules.version, cache=cache)
    assert cache  # filled per series
    again = build_incidents(vs, rules.incidents, rules.version, cache=cache)  # every series from the cache
    assert _enc(plain) == _enc(first) == _enc(again) and plain
    cut = [v for v in vs if v.measurement_start_time < vs[-1].measurement_start_time]  # one series changed
    assert _enc(build_incidents(cut, rules.incidents, rules.version, cache=cache)) == _enc(
        build_incidents(cut, rules.incidents, rules.version))
