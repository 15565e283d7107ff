"""Change detection per (network, service): spans of blocking, with onset and end.

A series of rounds (verdicts grouped by measurement time) is compared with the network's
own state: a span opens after `open_rounds` consecutive bad rounds (a round is bad when the
share of censorship verdicts reaches `open_share`) and its onset is back-dated to the first
bad round, so onset is exact to the probe cadence while one noisy round opens nothing. It
closes after `close_rounds` consecutive good rounds; the end is the first good round
(unblocking). Rounds with only `down`/`unknown` verdicts carry no evidence either way. The
technique per round is the commonest; changes of technique inside a span are recorded.
"""

from __future__ import annotations

import bisect
import operator
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from netvigil.model.records import Verdict
from netvigil.model.vocabulary import CENSORSHIP, Technique

NOT_TARGETED = frozenset({Technique.THROTTLED_GENERAL.value})  # a slow network is not a restriction of one service


@dataclass
class Round:
    time: str
    verdicts: list[Verdict]
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def state(self, open_share: float) -> str:
        """(Memoised: a round's verdicts do not change; a changed round is a new Round.)"""
        key = ("state", open_share)
        if key not in self._memo:
            self._memo[key] = self._state(open_share)
        return self._memo[key]

    def technique(self, state: str) -> str | None:
        key = ("technique", state)
        if key not in self._memo:
            self._memo[key] = self._technique(state)
        return self._memo[key]

    def evidence(self) -> list[Verdict]:
        """The verdicts a span of this round keeps: censorship and outage ones."""
        if "evidence" not in self._memo:
            self._memo["evidence"] = [v for v in self.verdicts if v.klass in CENSORSHIP or v.klass == "outage"]
        return self._memo["evidence"]

    def _state(self, open_share: float) -> str:
        ev = [v for v in self.verdicts if v.klass not in ("down", "unknown")]
        if not ev:
            return "none"
        bad = sum(v.klass in CENSORSHIP and v.technique not in NOT_TARGETED for v in ev)
        out = sum(v.klass == "outage" for v in ev)
        if out / len(ev) >= open_share:
            return "outage"
        if bad / len(ev) >= open_share:
            return "blocked"
        return "ok"

    def _technique(self, state: str) -> str | None:
        want = CENSORSHIP if state == "blocked" else {"outage"}
        c = Counter(v.technique or v.klass for v in self.verdicts if v.klass in want and v.technique not in NOT_TARGETED)
        return c.most_common(1)[0][0] if c else None


@dataclass
class Span:
    cc: str
    asn: str
    service: str
    kind: str  # censorship | outage
    start: str
    end: str | None
    network_name: str | None
    segments: list[dict] = field(default_factory=list)  # [{"technique","start","end"}]
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def technique(self) -> str | None:
        """The technique now (the last segment); `segments` keeps how it changed."""
        return self.segments[-1]["technique"] if self.segments else None


def rounds_of(verdicts: Iterable[Verdict], memo: dict | None = None) -> list[Round]:
    """Verdicts grouped by time. `memo` (kept by the caller between calls; the verdicts then
    come sorted by time): the rounds of the part of the series that is the very same objects
    as last time are last time's Rounds (state and technique already worked out), so a
    series that grew at its end costs only its new rounds."""
    if memo is None:
        by_time: dict[str, list[Verdict]] = {}
        for v in verdicts:
            by_time.setdefault(v.measurement_start_time[:19], []).append(v)
        return [Round(t, vs) for t, vs in sorted(by_time.items())]
    vs = verdicts if isinstance(verdicts, list) else list(verdicts)
    old_rounds, old_ends = memo.get("rounds", []), memo.get("ends", [])
    d, k = common_run(memo.get("vs", []), vs)
    if d == 0:
        first = 0
    else:  # the rounds before `d` (the window's start moved on) are gone
        j = bisect.bisect_left(old_ends, d)
        # (when the window starts inside a round, nothing is reused)
        first = j + 1 if j < len(old_ends) and old_ends[j] == d else len(old_rounds)
    keep = bisect.bisect_left(old_ends, d + k, first) if first < len(old_rounds) else first
    # kept: complete rounds inside the common part (the verdict after each is another round)
    rounds = old_rounds[first:keep]
    ends = old_ends[first:keep] if d == 0 else [e - d for e in old_ends[first:keep]]
    i = ends[-1] if ends else 0
    while i < len(vs):
        t = vs[i].measurement_start_time[:19]
        j = i + 1
        while j < len(vs) and vs[j].measurement_start_time[:19] == t:
            j += 1
        rounds.append(Round(t, vs[i:j]))
        ends.append(j)
        i = j
    memo.update(vs=vs, rounds=rounds, ends=ends)
    return rounds  # (held by the memo: not to be changed)


def common_run(old: list, new: list) -> tuple[int, int]:
    """Where `new` continues `old` (the front of a time-ordered list may have been cut):
    (d, k) with new starting at old[d] and old[d:d+k] being new[:k] object for object."""
    if not old or not new:
        return 0, 0
    d = 0
    if new[0] is not old[0]:
        t = new[0].measurement_start_time
        d = bisect.bisect_left(old, t, key=lambda v: v.measurement_start_time)
        while d < len(old) and old[d] is not new[0] and old[d].measurement_start_time == t:
            d += 1
        if d >= len(old) or old[d] is not new[0]:
            return len(old), 0
    return d, common_prefix(old[d:], new)


def common_prefix(a: list, b: list) -> int:
    """Length of the longest common prefix of two lists, by identity (C-speed comparisons)."""
    n = min(len(a), len(b))
    if n and a[n - 1] is b[n - 1] and all(map(operator.is_, a[:n], b[:n])):
        return n
    lo, hi = 0, n  # a[:lo] is b[:lo]; the answer is at most hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if all(map(operator.is_, a[lo:mid], b[lo:mid])):
            lo = mid
        else:
            hi = mid - 1
    return lo


def detect_spans(cc: str, asn: str, service: str, verdicts: list[Verdict], params: dict[str, float],
                 memo: dict | None = None) -> list[Span]:
    """Two independent machines over the same rounds: censorship spans (outage rounds carry
    no evidence about a block: they neither open nor close one) and outage spans."""
    rounds = [(r, r.state(params["open_share"])) for r in rounds_of(verdicts, memo)]
    name = next((v.probe_network_name for v in verdicts if v.probe_network_name), None)
    spans = _machine(cc, asn, service, name, rounds, "censorship", "blocked", {"ok"}, params)
    spans += _machine(cc, asn, service, name, rounds, "outage", "outage", {"ok", "blocked"}, params)
    return sorted(spans, key=lambda s: s.start)


def _machine(cc, asn, service, name, rounds, kind: str, bad: str, good: set[str], params) -> list[Span]:
    open_rounds, close_rounds = int(params["open_rounds"]), int(params["close_rounds"])
    spans: list[Span] = []
    cur: Span | None = None
    pending: list = []
    good_run: list = []
    for rnd, st in rounds:
        if st != bad and st not in good:
            continue  # no evidence either way
        if cur is None:
            if st == bad:
                pending.append(rnd)
                if len(pending) >= open_rounds:
                    cur = Span(cc, asn, service, kind, pending[0].time, None, name)
                    for r in pending:
                        _add(cur, r, bad)
                    pending = []
            else:
                pending = []
            continue
        if st == bad:
            good_run = []
            _add(cur, rnd, bad)
            continue
        good_run.append(rnd)
        if len(good_run) >= close_rounds:
            cur.end = good_run[0].time
            _close_segment(cur, cur.end)
            spans.append(cur)
            cur, good_run = None, []
    if cur is not None:
        spans.append(cur)
    return spans


def _add(span: Span, rnd: Round, st: str) -> None:
    tech = rnd.technique(st) or span.kind
    span.verdicts.extend(rnd.evidence())
    if span.segments and span.segments[-1]["technique"] == tech and span.segments[-1]["end"] is None:
        span.segments[-1]["rounds"] += 1
        span.segments[-1]["last"] = rnd.time
        return
    _close_segment(span, rnd.time)
    span.segments.append({"technique": tech, "start": rnd.time, "end": None, "rounds": 1, "last": rnd.time})


def _close_segment(span: Span, at: str) -> None:
    if span.segments and span.segments[-1]["end"] is None:
        span.segments[-1]["end"] = at
