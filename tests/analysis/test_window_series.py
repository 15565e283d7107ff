"""The live window keeps its verdicts grouped by series as they come (window.CountryWindow.series,
issue #13: each refresh grouped and sorted the whole window again), and the refresh builds
from those groups (builder.spans_from_series). Over seeded sequences of what a live window
sees (rounds appended, a round re-judged, a verdict that changes series, late data put in its
place or the window sorted again, the start pruned or bounded, a refresh from a later `since`), the groups must be what grouping the
ordered window from scratch gives, and the incidents built from them the incidents built from
the flat list, byte for byte."""

from __future__ import annotations

import random

import msgspec
import pytest

from netvigil.analysis.incidents.builder import build_incidents, spans_from_series, spans_from_verdicts
from netvigil.analysis.incidents import window
from netvigil.analysis.incidents.window import CountryWindow
from netvigil.analysis.rules import load_rules
from netvigil.model.records import Verdict

KLASSES = ["ok", "ok", "ok", "tls", "dns", "outage", "unknown", "ok"]
SERVICES = ["twitter", "facebook", "control", None]


def _v(rng: random.Random, uid: str, minute: int, **kw) -> Verdict:
    k = rng.choice(KLASSES)
    fields = dict(measurement_uid=uid, measurement_start_time=f"2022-02-26 {minute // 60:02d}:{minute % 60:02d}:00",
                  probe_cc="RU", probe_asn=rng.choice(["AS1", "AS2", "AS3"]), service=rng.choice(SERVICES), input=None,
                  domain=None, klass=k, technique=None if k in ("ok", "unknown") else f"{k}.x",
                  path=rng.choice(["direct", "direct", "direct", "vpn"]))
    fields.update(kw)
    return Verdict(**fields)


def _scratch(w: CountryWindow, since: str) -> dict[tuple, list[Verdict]]:
    out: dict[tuple, list[Verdict]] = {}
    for v in sorted((v for v in w.by_uid.values() if v.measurement_start_time >= max(since, w.since)),
                    key=lambda v: (v.measurement_start_time, v.measurement_uid)):
        if v.service:
            out.setdefault((v.path == "direct", v.probe_asn, v.service), []).append(v)
    return out


def _steps(seed: int, n: int = 120):
    """(window, since) after each step, the window changed as the live state changes it."""
    rng = random.Random(seed)
    w = CountryWindow("")
    minute, uid = 0, 0
    for _ in range(n):
        op = rng.random()
        if op < 0.5 or len(w.by_uid) < 5:  # a round (or part of one) arrives
            minute += rng.choice([0, 0, 1, 5])
            for _ in range(rng.randint(1, 6)):
                uid += 1
                w.put(_v(rng, f"u{uid:06d}", minute))
        elif op < 0.65:  # the newest round re-judged: new objects for the same uids
            last = max(v.measurement_start_time for v in w.by_uid.values())
            for v in [v for v in w.by_uid.values() if v.measurement_start_time == last]:
                w.put(msgspec.structs.replace(v, klass=rng.choice(KLASSES)))
        elif op < 0.7:  # a re-judged verdict in another series (its service read otherwise)
            v = rng.choice(list(w.by_uid.values()))
            w.put(msgspec.structs.replace(v, service=rng.choice(SERVICES)))
        elif op < 0.8:  # late data in the middle
            uid += 1
            w.put(_v(rng, f"u{uid:06d}", rng.randint(0, max(minute, 1))))
        elif op < 0.9:  # the start moves on (prune, or the memory bound)
            times = sorted({v.measurement_start_time for v in w.by_uid.values()})
            cut = times[rng.randint(0, max(0, len(times) // 3))]
            if rng.random() < 0.5:
                w.prune(cut)
            else:
                w.bound(max(1, len(w.by_uid) * 2 // 3))
        times = sorted({v.measurement_start_time for v in w.by_uid.values()}) or [""]
        since = rng.choice([w.since, w.since, times[len(times) // 2]])
        yield w, since


def _ids(grouped):
    return [(k, [id(v) for v in vs]) for k, vs in grouped.items()]


@pytest.mark.parametrize("late_place", [3, 4096])
@pytest.mark.parametrize("seed", range(10))
def test_series_are_the_groups_of_the_ordered_window(seed, late_place, monkeypatch):
    """(late_place: how far back a late verdict is put in place; past it the window is sorted again)"""
    monkeypatch.setattr(window, "LATE_PLACE", late_place)
    kept = 0
    for w, since in _steps(seed):
        got = w.series(since)
        assert _ids(got) == _ids(_scratch(w, since))  # same series, same order, same verdicts
        flat = w.ordered(since)
        assert [id(v) for v in flat] == [id(v) for v in sorted(
            (v for v in w.by_uid.values() if v.measurement_start_time >= max(since, w.since)),
            key=lambda v: (v.measurement_start_time, v.measurement_uid))]
        assert sum(len(vs) for vs in got.values()) == sum(1 for v in flat if v.service)
        kept += w._series is not None
        for vs in got.values():  # handed out as copies: the caller may keep them
            vs.append(None)
        assert _ids(w.series(since)) == _ids(_scratch(w, since))
    assert kept > 0


@pytest.mark.parametrize("seed", range(6))
def test_incidents_from_series_are_the_incidents_from_the_list(seed):
    rules = load_rules()
    params = rules.incidents
    c_list: dict = {}
    c_series: dict = {}
    c_spans: dict = {}
    for w, since in _steps(seed, 80):
        vs = w.ordered(since)
        want = build_incidents(vs, params, rules.version)
        got = build_incidents(vs, params, rules.version, cache=c_series, grouped=("RU", w.series(since)))
        also = build_incidents(vs, params, rules.version, cache=c_list)
        assert [msgspec.json.encode(i) for i in got] == [msgspec.json.encode(i) for i in want]
        assert [msgspec.json.encode(i) for i in also] == [msgspec.json.encode(i) for i in want]
        spans, circ = spans_from_series("RU", w.series(since), params, c_spans)
        spans0, circ0 = spans_from_verdicts(vs, params)
        assert [(s.asn, s.service, s.kind, s.start, s.end, s.segments) for s in spans] == \
               [(s.asn, s.service, s.kind, s.start, s.end, s.segments) for s in spans0]
        assert {k: [id(v) for v in x] for k, x in circ.items()} == {k: [id(v) for v in x] for k, x in circ0.items()}
