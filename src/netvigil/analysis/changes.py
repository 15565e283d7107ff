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
        """The technique now (the last segment); `segments` keeps how it changed."""
        return self.segments[-1]["technique"] if self.segments else None


def rounds_of(verdicts: Iterable[Verdict]) -> list[Round]:
    by_time: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_time.setdefault(v.measurement_start_time[:19], []).append(v)
    return [Round(t, vs) for t, vs in sorted(by_time.items())]


def detect_spans(cc: str, asn: str, service: str, verdicts: list[Verdict], params: dict[str, float]) -> list[Span]:
    """Two independent machines over the same rounds: censorship spans (outage rounds carry
    no evidence about a block: they neither open nor close one) and outage spans."""
    rounds = [(r, r.state(params["open_share"])) for r in rounds_of(verdicts)]
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
