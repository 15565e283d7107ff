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

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from netvigil.model.records import Verdict

CENSORSHIP = {"dns", "tcp", "tls", "http", "quic", "throttled"}
NOT_TARGETED = {"throttled.general"}  # a slow network is not a restriction of one service


@dataclass
class Round:
    time: str
    verdicts: list[Verdict]

    def state(self, open_share: float) -> str:
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

    def technique(self, state: str) -> str | None:
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
        c = Counter()
        for s in self.segments:
            c[s["technique"]] += s.get("rounds", 1)
        return c.most_common(1)[0][0] if c else None


def rounds_of(verdicts: Iterable[Verdict]) -> list[Round]:
    by_time: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_time.setdefault(v.measurement_start_time[:19], []).append(v)
    return [Round(t, vs) for t, vs in sorted(by_time.items())]


def detect_spans(cc: str, asn: str, service: str, verdicts: list[Verdict], params: dict[str, float]) -> list[Span]:
    open_share = params["open_share"]
    open_rounds, close_rounds = int(params["open_rounds"]), int(params["close_rounds"])
    spans: list[Span] = []
    cur: Span | None = None
    pending: list[tuple[Round, str]] = []  # bad rounds not yet confirmed
    good_run: list[Round] = []
    for rnd in rounds_of(verdicts):
        st = rnd.state(open_share)
        if st == "none":
            continue
        if cur is None:
            if st in ("blocked", "outage"):
                if pending and pending[-1][1] != st:
                    pending = []
                pending.append((rnd, st))
                if len(pending) >= open_rounds:
                    first = pending[0][0]
                    kind = "outage" if st == "outage" else "censorship"
                    name = next((v.probe_network_name for v in first.verdicts if v.probe_network_name), None)
                    cur = Span(cc, asn, service, kind, first.time, None, name)
                    for r, s in pending:
                        _add(cur, r, s)
                    pending = []
            else:
                pending = []
            continue
        want = "outage" if cur.kind == "outage" else "blocked"
        if cur.kind == "censorship" and st == "outage":
            continue  # the network is down: no evidence about the block either way
        if st == want:
            good_run = []
            _add(cur, rnd, st)
        else:
            good_run.append(rnd)
            if len(good_run) >= close_rounds:
                cur.end = good_run[0].time
                _close_segment(cur, cur.end)
                spans.append(cur)
                cur, good_run = None, []
                if st in ("blocked", "outage"):
                    pending = [(rnd, st)]
    if cur is not None:
        spans.append(cur)
    return spans


def _add(span: Span, rnd: Round, st: str) -> None:
    tech = rnd.technique(st) or span.kind
    span.verdicts.extend(v for v in rnd.verdicts if v.klass in CENSORSHIP or v.klass == "outage")
    if span.segments and span.segments[-1]["technique"] == tech and span.segments[-1]["end"] is None:
        span.segments[-1]["rounds"] += 1
        span.segments[-1]["last"] = rnd.time
        return
    _close_segment(span, rnd.time)
    span.segments.append({"technique": tech, "start": rnd.time, "end": None, "rounds": 1, "last": rnd.time})


def _close_segment(span: Span, at: str) -> None:
    if span.segments and span.segments[-1]["end"] is None:
        span.segments[-1]["end"] = at
