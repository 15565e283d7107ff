"""The live analysis' memory is bounded (analysis/incidents/window.py, issue #13): past `max_held`
verdicts or `max_uids` uids, the oldest are let go and the country's floor rises. What it
publishes must be what an unbounded analysis publishes from the same feed: checked side by
side on two stores, with a closed incident let go and a block that stays open far longer
than the bound holds (carried on from the floor: same id, start, networks and events; only its
measurement count is the bounded one), resubmissions refused and a restart."""

from __future__ import annotations

import msgspec

from netvigil.analysis.incidents import window
from netvigil.analysis.analysed_store import AnalysedStore
from tests.analysis.factory import at, round_of

MAX_HELD, MAX_UIDS = 48, 60  # verdicts: a round of two networks is 4 (twitter and control each)
ROUNDS = 60


def _feed() -> list[list]:
    out = []
    for r in range(ROUNDS):
        reset = 5 <= r <= 10 or r >= 25  # one closed incident, then one open for 35 rounds (140 verdicts)
        out.append(round_of(at(r), "AS12389", techniques={"twitter": "tls.reset_after_hello" if reset else None})
                   + round_of(at(r), "AS8359"))
    return out


def _told(incidents) -> list[tuple]:
    """An incident as published, but for its measurement count (the bounded one counts from its floor)."""
    return [(i.id, i.country, i.service, i.kind, i.start, i.end, i.circumvention, i.techniques, i.confirmed,
             [msgspec.json.encode(n) for n in i.networks], i.evidence.rules_version, i.evidence.vantage_networks)
            for i in incidents]


def _copy(ms):
    return [msgspec.json.decode(msgspec.json.encode(m), type=type(m)) for m in ms]


def _held(obs) -> int:
    return sum(len(w.by_uid) for w in obs.live.windows.values())


def test_bounded_memory_publishes_what_the_unbounded_analysis_does(tmp_path, monkeypatch):
    monkeypatch.setattr(window, "MAX_HELD", MAX_HELD)
    monkeypatch.setattr(window, "MAX_UIDS", MAX_UIDS)
    small = AnalysedStore(tmp_path / "small")
    monkeypatch.undo()
    big = AnalysedStore(tmp_path / "big")
    assert small.live.max_held == MAX_HELD and big.live.max_held == window.MAX_HELD
    events = {"small": [], "big": []}
    most = 0
    with small, big:
        for rnd in _feed():
            for name, obs in (("small", small), ("big", big)):
                assert obs.add(_copy(rnd)) == len(rnd)
                events[name].append([(c.event, c.incident.id, c.at) for c in obs.refresh()])
            most = max(most, _held(small))
            assert len(small.live.uids) <= MAX_UIDS
        assert events["small"] == events["big"]
        assert [e for rnd in events["big"] for e, _, _ in rnd] == ["start", "end", "start"]
        assert _told(small.incidents()) == _told(big.incidents())
        assert small.status() == big.status()
        # the bound held; both incidents began before the floor: one closed, one carried on
        first, second = sorted(big.incidents(), key=lambda i: i.start)
        assert most <= MAX_HELD + 4 and _held(small) <= MAX_HELD and _held(big) == 4 * ROUNDS
        floor = small.live.floor("RU")
        assert first.end < second.start < floor and second.end is None
        # what ended before the floor is final: let go from memory (the store answers for it)
        assert list(small.live.incidents["RU"]) == [second.id]
        assert list(big.live.incidents["RU"]) == [first.id, second.id]
        assert small.live.windows["RU"].since == floor
        counted = {i.id: i.evidence.measurement_count for i in small.incidents()}
        assert counted[second.id] < second.evidence.measurement_count  # counted from the floor
        assert small.live.uid_floor > at(0)
        # resubmitted rounds, held or let go, are refused (the store answers for the old ones)
        assert sum(small.add(_copy(rnd)) for rnd in _feed()) == 0
        assert len(small.verdicts(limit=None)) == len(big.verdicts(limit=None)) == 4 * ROUNDS
        published = _told(big.incidents())
    # a restart: the store answers what memory let go
    with AnalysedStore(tmp_path / "small") as again:
        assert _told(again.incidents()) == published
        assert again.add(_copy(_feed()[0])) == 0


def test_a_window_held_in_order_as_verdicts_come_is_the_sorted_window():
    """CountryWindow.put appends and replaces in place instead of sorting again; whatever the
    order of arrival (late rounds, a uid judged again at its time or at another), what it
    answers is the window sorted as the store sorts it."""
    import random

    from netvigil.model.records import Verdict

    rng = random.Random(13)
    w = window.CountryWindow(at(2))
    made: dict[str, int] = {}
    fast = 0
    for step in range(2000):
        late = step % 4 == 0  # a round older than the newest
        r = rng.randrange(0, 40) + step // 100 if late else 39 + step // 100
        uid = f"n{step:05d}"
        if step % 3 == 0 and made:
            uid = rng.choice(sorted(made))  # judged again: at its own time (a provisional made final) or not
            r = made[uid] if step % 50 else r
        same_time, new = made.get(uid) == r, uid not in made
        made[uid] = r
        kept = w._sorted is not None
        w.put(Verdict(uid, at(r), "RU", "AS1", "twitter", None, None, "ok" if step % 2 else "blocked"))
        if kept and (same_time or (new and not late)):  # appended, or replaced in place: not sorted again
            assert w._sorted is not None
            fast += 1
        if step % 7 == 0:
            since = at(rng.randrange(0, 60))
            want = sorted((x for x in w.by_uid.values() if x.measurement_start_time >= since),
                          key=lambda x: (x.measurement_start_time, x.measurement_uid))
            assert w.ordered(since) == want
            assert w.ordered(w.since) == sorted(w.by_uid.values(), key=lambda x: (x.measurement_start_time, x.measurement_uid))
    assert fast  # (the in-place path was taken)


def test_the_bounds_come_from_the_environment_and_a_bad_one_is_one_clear_error(monkeypatch):
    import pytest

    from netvigil.errors import ConfigError

    none = lambda q: []  # noqa: E731  (an empty store)
    monkeypatch.setenv("NETVIGIL_MAX_HELD_VERDICTS", "1_000")
    monkeypatch.setenv("NETVIGIL_MAX_HELD_UIDS", "5000")
    live = window.LiveState(none, str, 86400)
    assert (live.max_held, live.max_uids) == (1000, 5000)
    monkeypatch.setenv("NETVIGIL_MAX_HELD_VERDICTS", "lots")
    with pytest.raises(ConfigError) as err:
        window.LiveState(none, str, 86400)
    assert str(err.value).startswith("NETVIGIL_MAX_HELD_VERDICTS") and "'lots'" in str(err.value)
