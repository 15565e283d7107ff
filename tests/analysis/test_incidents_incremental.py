"""The live refresh reuses what it worked out last time (rounds of a series, measurement times
per network) for the part of the verdicts that is the very same objects. Whatever happens to
the window between two refreshes (it grows at the end, a verdict is re-judged, its start moves
on, late data lands in the middle), the memo path must give what a build from scratch gives.
Random sequences of those steps, seeded, on verdicts with shared and distinct round times."""

from __future__ import annotations

import random

import msgspec
import pytest

from netvigil.analysis.incidents.changes import common_prefix, common_run, rounds_of
from netvigil.analysis.incidents.builder import _times_by_network, silence_spans
from netvigil.model.records import Verdict

KLASSES = ["ok", "ok", "ok", "tls", "dns", "outage", "unknown"]


def _v(rng: random.Random, i: int, minute: int) -> Verdict:
    k = rng.choice(KLASSES)
    return Verdict(measurement_uid=f"u{i:06d}", measurement_start_time=f"2022-02-26 {minute // 60:02d}:{minute % 60:02d}:00",
                   probe_cc="RU", probe_asn=rng.choice(["AS1", "AS2", "AS3"]), service="twitter", input=None, domain=None,
                   klass=k, technique=None if k in ("ok", "unknown") else f"{k}.x",
                   path=rng.choice(["direct", "direct", "direct", "vpn"]))


def _order(vs):
    return sorted(vs, key=lambda v: (v.measurement_start_time, v.measurement_uid))


def _steps(seed: int, n: int = 60):
    """Successive window contents, as the held window would hand them to a refresh."""
    rng = random.Random(seed)
    held: dict[str, Verdict] = {}
    minute, uid = 0, 0
    for _ in range(n):
        op = rng.random()
        if op < 0.55 or len(held) < 5:  # a round (or part of one) arrives
            minute += rng.choice([0, 0, 1, 10])
            for _ in range(rng.randint(1, 4)):
                uid += 1
                v = _v(rng, uid, minute)
                held[v.measurement_uid] = v
        elif op < 0.7:  # the current round is re-judged: new objects for the same uids
            last = max(v.measurement_start_time for v in held.values())
            for u, v in list(held.items()):
                if v.measurement_start_time == last:
                    held[u] = msgspec.structs.replace(v, klass=rng.choice(KLASSES))
        elif op < 0.85:  # the window's start moves on
            times = sorted({v.measurement_start_time for v in held.values()})
            cut = times[rng.randint(0, max(0, len(times) // 3))]
            held = {u: v for u, v in held.items() if v.measurement_start_time >= cut}
        else:  # late data in the middle
            uid += 1
            v = _v(rng, uid, rng.randint(0, max(minute, 1)))
            held[v.measurement_uid] = v
        yield _order(held.values())


def _shape(rounds):
    return [(r.time, [id(v) for v in r.verdicts], r.state(0.5), r.technique("blocked")) for r in rounds]


@pytest.mark.parametrize("seed", range(8))
def test_rounds_from_the_memo_are_the_rounds_from_scratch(seed):
    memo: dict = {}
    reused = 0
    for vs in _steps(seed):
        before = {id(r) for r in memo.get("rounds", [])}
        got = rounds_of(vs, memo)
        assert _shape(got) == _shape(rounds_of(vs))
        reused += sum(id(r) in before for r in got)
    assert reused > 0  # the memo was used, not just rebuilt


@pytest.mark.parametrize("seed", range(8))
def test_times_by_network_from_the_memo_are_the_times_from_scratch(seed):
    memo: dict = {}
    for vs in _steps(seed):
        direct = [v for v in vs if v.path == "direct"]
        got = _times_by_network(direct, memo)
        want = _times_by_network(direct, None)
        assert list(got.items()) == list(want.items())  # same networks, same order, same times
        assert [msgspec.json.encode(s) for s in silence_spans(vs, {})] == [msgspec.json.encode(s) for s in silence_spans(vs)]


def test_align_and_common_prefix():
    a = [object() for _ in range(10)]
    assert common_prefix(a, a[:7]) == 7
    assert common_prefix(a, a[:4] + [object()] + a[5:]) == 4
    assert common_prefix([], a) == 0
    vs = _order(_v(random.Random(1), i, i // 2) for i in range(10))
    assert common_run(vs, vs[3:]) == (3, 7)
    assert common_run(vs, vs[3:6] + [_v(random.Random(2), 99, 50)]) == (3, 3)
    assert common_run(vs, [_v(random.Random(3), 98, 1)] + vs) == (len(vs), 0)  # nothing in common at the front
