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
from netvigil.model.vocabulary import CENSORSHIP, IncidentKind, Technique, VerdictClass

NOT_TARGETED = frozenset({Technique.THROTTLED_GENERAL.value})  # a slow network is not a restriction of one service
# sets, not members spelled in the loops (an enum member's lookup costs ~0.3 us per verdict)
_OUTAGE = frozenset({VerdictClass.OUTAGE.value})
_EVIDENCE = CENSORSHIP | _OUTAGE  # what a span keeps
_NO_EVIDENCE = frozenset({VerdictClass.DOWN.value, VerdictClass.UNKNOWN.value})  # says nothing of the network


@dataclass
class Round:
    """The verdicts of one (network, service) series measured at one time: its state (ok,
    blocked, outage, or none: no evidence) and technique, memoised as its verdicts never change."""

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
            self._memo["evidence"] = [v for v in self.verdicts if v.klass in _EVIDENCE]
        return self._memo["evidence"]

    def _state(self, open_share: float) -> str:
        ev = [v for v in self.verdicts if v.klass not in _NO_EVIDENCE]
        if not ev:
            return "none"
        bad = sum(v.klass in CENSORSHIP and v.technique not in NOT_TARGETED for v in ev)
        out = sum(v.klass in _OUTAGE for v in ev)
        if out / len(ev) >= open_share:
            return "outage"
        if bad / len(ev) >= open_share:
            return "blocked"
        return "ok"

    def _technique(self, state: str) -> str | None:
        want = CENSORSHIP if state == "blocked" else _OUTAGE
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


KEPT_BACK = 3  # detect_spans keeps its machines' state this many rounds before the series' last


def detect_spans(cc: str, asn: str, service: str, verdicts: list[Verdict], params: dict[str, float],
                 memo: dict | None = None) -> list[Span]:
    """Two independent machines over the same rounds: censorship spans (outage rounds carry
    no evidence about a block: they neither open nor close one) and outage spans.

    `memo` (kept by the caller, as for rounds_of): the machines' state before the last
    KEPT_BACK + 1 rounds is kept, so a series whose rounds are last time's plus new ones steps
    only through the rounds after it (the last rounds may still change: a fleet's measurements
    arrive seconds late, into the rounds before the newest). Measured under a sustained load:
    each refresh stepped every round of every series again (~30% of it); with the state kept
    before the last round only, 40% of the series that changed started again from nothing."""
    rounds = rounds_of(verdicts, memo)
    name = next((v.probe_network_name for v in verdicts if v.probe_network_name), None)
    share = params["open_share"]
    key = (name, share, int(params["open_rounds"]), int(params["close_rounds"]))
    snap = memo.get("machines") if memo is not None else None
    start = 0
    resumed = snap is not None and snap[0] == key and len(rounds) >= len(snap[1]) \
        and common_prefix(snap[1], rounds) == len(snap[1])
    if resumed:
        start = len(snap[1])
        machines = [m.copy() for m in snap[2]]
    else:
        machines = [_Machine(cc, asn, service, name, IncidentKind.CENSORSHIP, "blocked", {"ok"}, params),
                    _Machine(cc, asn, service, name, IncidentKind.OUTAGE, "outage", {"ok", "blocked"}, params)]
    keep = max(0, len(rounds) - 1 - KEPT_BACK)
    for i in range(start, len(rounds)):
        if i == keep and memo is not None and not (resumed and i == start):  # (that one is kept already)
            memo["machines"] = (key, rounds[:keep], [m.copy() for m in machines])  # the state before round `keep`
        rnd = rounds[i]
        st = rnd.state(share)
        for m in machines:
            m.step(rnd, st)
    if memo is not None and not rounds:
        memo.pop("machines", None)
    spans = machines[0].result() + machines[1].result()
    return sorted(spans, key=lambda s: s.start)


class _Machine:
    """One kind's spans over a series' rounds, one round at a time (see `detect_spans`)."""

    __slots__ = ("conf", "spans", "cur", "pending", "good_run")

    def __init__(self, cc, asn, service, name, kind: str, bad: str, good: set[str], params) -> None:
        self.conf = (cc, asn, service, name, kind, bad, good, int(params["open_rounds"]), int(params["close_rounds"]))
        self.spans: list[Span] = []  # closed: never changed again
        self.cur: Span | None = None
        self.pending: list[Round] = []
        self.good_run: list[Round] = []

    def copy(self) -> "_Machine":
        """A machine in the same state that can go on alone (the open span copied: it grows)."""
        m = object.__new__(_Machine)
        m.conf, m.spans, m.pending, m.good_run = self.conf, list(self.spans), list(self.pending), list(self.good_run)
        c = self.cur
        m.cur = None if c is None else Span(c.cc, c.asn, c.service, c.kind, c.start, c.end, c.network_name,
                                             [dict(g) for g in c.segments], list(c.verdicts))
        return m

    def step(self, rnd: Round, st: str) -> None:
        cc, asn, service, name, kind, bad, good, open_rounds, close_rounds = self.conf
        if st != bad and st not in good:
            return  # no evidence either way
        cur = self.cur
        if cur is None:
            if st == bad:
                self.pending.append(rnd)
                if len(self.pending) >= open_rounds:
                    cur = self.cur = Span(cc, asn, service, kind, self.pending[0].time, None, name)
                    for r in self.pending:
                        _add(cur, r, bad)
                    self.pending = []
            else:
                self.pending = []
            return
        if st == bad:
            self.good_run = []
            _add(cur, rnd, bad)
            return
        self.good_run.append(rnd)
        if len(self.good_run) >= close_rounds:
            cur.end = self.good_run[0].time
            _close_segment(cur, cur.end)
            self.spans.append(cur)
            self.cur, self.good_run = None, []

    def result(self) -> list[Span]:
        return self.spans + [self.cur] if self.cur is not None else list(self.spans)


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
