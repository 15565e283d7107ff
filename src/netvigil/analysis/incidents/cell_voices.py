"""Who backs each status cell, kept as verdicts are written (the quorum's status side).

A status cell (country, network, service) is backed by the voices whose direct verdicts in
the cell have its class in the STATUS_WINDOW before its last measurement (quorum.py). Counting
that from the country's verdicts every round cost ~15% of the analysis under load; here each
verdict is counted once, when it is written (`feed`), and a round recomputes only the cells
whose voices or window moved. `recount` is the same count done from scratch, for tests and
benchmarks: both give the same status rows.

Counts are capped: a cell's independent probes and source networks are counted up to
max(quorum, CELL_COUNT_CAP), enough to say it is backed, so a cell backed by thousands of
probes costs no more than one backed by eight.

Memory is bounded: each uid is held (so that its judgement again, with another class, moves
it) until TRACKED_MAX are held (in the analysis: TRACKED_SHARE of the live window's uid bound,
NETVIGIL_MAX_HELD_UIDS); then the oldest minutes are folded into their voice's newest time in
their cell (still counted; a judgement again of one of them, long after, is taken as a new
verdict). The live window (window.py) lets go of its oldest verdicts the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

from netvigil.analysis.incidents.voices import OPERATOR, Backing, Voice, independent
from netvigil.analysis.incidents.window import MAX_UIDS
from netvigil.model.records import StatusRow, Verdict
from netvigil.model.times import shift, stored

STATUS_WINDOW = 86400  # seconds: a status cell is backed by the voices that agree with it in the last day
CELL_COUNT_CAP = 8  # a status cell's probes are counted up to this many (or the quorum): then it is backed
NEVER = "9999-12-31 23:59:59"
TRACKED_SHARE = 0.8  # of the live window's uid bound (window.MAX_UIDS, or what the analysis passes)
TRACKED_MAX = int(MAX_UIDS * TRACKED_SHARE)  # uids held one by one (~200 bytes each); older ones are folded

Key = tuple[str, str, str, str]  # (country, asn, service, class)
VoicesOf = Callable[[list[str]], dict[str, Voice]]


def window_of(row: StatusRow) -> tuple[str, str]:
    """[floor, last] of the verdicts that may back ROW: the day before its last measurement."""
    if not row.last_measurement:
        return "", NEVER
    last = stored(row.last_measurement)
    return _day_before(last), last


@lru_cache(maxsize=1 << 14)
def _day_before(last: str) -> str:
    """shift(last, -STATUS_WINDOW), cached: every status row of every changed country asks each
    round, and the rows of a round share a few times (measured under a sustained load: a
    strptime per row was the largest part of counting the cells, growing with the grid)."""
    return shift(last, -STATUS_WINDOW)


def capped_backing(voices: Iterable[Voice], cap: int) -> Backing:
    """quorum.backing with both counts stopped at CAP."""
    counted = [v for v in voices if v.counted]
    operator = bool(counted) and all(v == OPERATOR for v in counted)
    real = [v for v in counted if v != OPERATOR]
    return Backing(independent_probes=independent(((v.probe, v.network) for v in real), cap),
                   source_networks=min(len({v.network for v in real}), cap),
                   trusted=any(v.trusted for v in counted), operator=operator)


def _counts(v: Verdict) -> bool:
    return v.path == "direct" and bool(v.service)


def recount(rows: list[StatusRow], verdicts_since: Callable[[str, str], list[Verdict]], voices_of: VoicesOf,
            cap: int) -> dict[tuple[str, str, str], Backing]:
    """(cc, asn, service) -> backing of each row, counted from scratch over every verdict of
    its window (the reference the incremental CellVoices must agree with)."""
    out: dict[tuple[str, str, str], Backing] = {}
    by_country: dict[str, list[StatusRow]] = {}
    for r in rows:
        by_country.setdefault(r.country, []).append(r)
    for cc, rs in by_country.items():
        spans = {(r.asn, r.service, r.klass): window_of(r) for r in rs}
        vs = verdicts_since(cc, min(f for f, _ in spans.values()) or "1970-01-01 00:00:00")
        picked: dict[tuple, list[str]] = {k: [] for k in spans}
        for v in vs:
            key = (v.probe_asn, v.service, v.klass)
            if key in spans and _counts(v):
                floor, last = spans[key]
                if floor <= stored(v.measurement_start_time) <= last:
                    picked[key].append(v.measurement_uid)
        said = voices_of([u for uids in picked.values() for u in uids])
        for r in rs:
            key = (r.asn, r.service, r.klass)
            out[(cc, r.asn, r.service)] = capped_backing({said[u] for u in picked[key]}, cap)
    return out


class Said:
    """One voice in one cell: the times of its verdicts there (held uid by uid, or folded
    into the newest time of those let go), and the newest of them all."""

    __slots__ = ("times", "folded", "newest", "prune_at")

    def __init__(self):
        self.times: dict[str, str] = {}  # uid -> time
        self.folded = ""  # the newest time of the uids no longer held one by one
        self.newest = ""
        self.prune_at = 64  # let go of times before the floor when there are this many

    def add(self, uid: str, t: str) -> None:
        self.times[uid] = t
        if t > self.newest:
            self.newest = t

    def remove(self, uid: str) -> None:
        t = self.times.pop(uid, None)
        if t is not None and t == self.newest:
            self.newest = max(max(self.times.values(), default=""), self.folded)

    def fold(self, uid: str) -> None:
        t = self.times.pop(uid, None)
        if t is not None and t > self.folded:
            self.folded = t

    def empty(self) -> bool:
        return not self.times and not self.folded

    def inside(self, floor: str, last: str) -> bool:
        if floor <= self.newest <= last:  # the usual case: a cell's last is its newest verdict
            return True
        return self.newest > last and (floor <= self.folded <= last
                                       or any(floor <= t <= last for t in self.times.values()))


class CellVoices:
    """Per (country, asn, service, class): each voice and the times of its verdicts there.

    `feed` takes verdicts as they are written (a uid's later verdict replaces its earlier
    one, which may have had another class); their voices are looked up at the next
    `catch_up`, once the round's provenance is in (quorum.VoiceBook). A country is seeded
    from its verdicts the first time its cells are asked for (after a start or a `reset`)."""

    def __init__(self, cap: int, tracked_max: int | None = None):
        self.cap = cap
        self.tracked_max = tracked_max or TRACKED_MAX  # uids held one by one before folding
        self.cells: dict[Key, dict[Voice, Said]] = {}
        self.of_uid: dict[str, tuple[Key, Voice]] = {}
        self.minutes: dict[str, list[str]] = {}  # minute -> uids held from it (some may be gone since)
        self.listed = 0  # uids in `minutes`
        self.waiting: list[Verdict] = []  # fed, voices not looked up yet
        self.seeded: set[str] = set()
        self.changed: set[Key] = set()
        self._memo: dict[Key, tuple[str, str, Backing]] = {}  # key -> (floor, last, its backing)

    def reset(self) -> None:
        """Forget every count (a probe's trust or a measurement's provenance changed)."""
        self.__init__(self.cap, self.tracked_max)

    def feed(self, verdicts: Iterable[Verdict]) -> None:
        self.waiting.extend(v for v in verdicts if _counts(v))

    def _apply(self, verdicts: list[Verdict], voices_of: VoicesOf) -> None:
        if not verdicts:
            return
        said = voices_of(list(dict.fromkeys(v.measurement_uid for v in verdicts)))
        for v in verdicts:
            uid, voice = v.measurement_uid, said[v.measurement_uid]
            key = (v.probe_cc, v.probe_asn, v.service, v.klass)
            before = self.of_uid.get(uid)
            if before is not None:
                self._drop(uid, *before)
            by_voice = self.cells.get(key)
            if by_voice is None:
                by_voice = self.cells[key] = {}
            entry = by_voice.get(voice)
            if entry is None:
                entry = by_voice[voice] = Said()
            t = stored(v.measurement_start_time)
            entry.add(uid, t)
            self.of_uid[uid] = (key, voice)
            self.changed.add(key)
            if before is None:
                self.minutes.setdefault(t[:16], []).append(uid)
                self.listed += 1
        if self.listed > self.tracked_max:
            self._fold(int(self.tracked_max * 0.8))

    def _fold(self, keep: int) -> None:
        """Fold the uids of the oldest minutes until about `keep` are listed."""
        for minute in sorted(self.minutes):
            if self.listed <= keep:
                break
            for uid in self.minutes.pop(minute):
                self.listed -= 1
                held = self.of_uid.pop(uid, None)
                if held is not None:
                    entry = self.cells.get(held[0], {}).get(held[1])
                    if entry is not None:
                        entry.fold(uid)

    def _drop(self, uid: str, key: Key, voice: Voice) -> None:
        by_voice = self.cells.get(key)
        entry = by_voice.get(voice) if by_voice else None
        if entry is not None:
            entry.remove(uid)
            if entry.empty():
                del by_voice[voice]
        del self.of_uid[uid]
        self.changed.add(key)

    def catch_up(self, countries: set[str], floor_of: Callable[[str], str],
                 verdicts_since: Callable[[str, str], list[Verdict]], voices_of: VoicesOf) -> set[tuple[str, str, str]]:
        """Count what was fed since the last call (COUNTRIES asked for the first time are seeded
        from their verdicts since `floor_of(country)`, their rows' earliest window floor). The
        cells whose verdicts moved: their backing is to be asked again (`backing`); the others'
        is as it was, so a round costs the cells that changed, not the grids asked for."""
        waiting, self.waiting = self.waiting, []
        for cc in sorted(countries - self.seeded):
            self._apply([v for v in verdicts_since(cc, floor_of(cc) or "1970-01-01 00:00:00") if _counts(v)],
                        voices_of)
            self.seeded.add(cc)
        self._apply(waiting, voices_of)  # after the seed: a verdict fed later is the newer judgement
        return {k[:3] for k in self.changed}

    def backing(self, row: StatusRow) -> Backing:
        """ROW's backing: the voices of its class in its window (counted again only when its
        cell was fed or its window moved since it was last counted)."""
        key = (row.country, row.asn, row.service, row.klass)
        floor, last = window_of(row)
        memo = self._memo.get(key)
        if memo is None or key in self.changed or memo[0] != floor or memo[1] != last:
            memo = self._memo[key] = (floor, last, self._count(key, floor, last))
            self.changed.discard(key)
        return memo[2]

    def settle(self) -> set[tuple[str, str, str]]:
        """End of a round: the cells fed but not counted now (their class is not their row's,
        or their country was not asked for). What was remembered of them is stale: forgotten
        here, and returned so that the caller forgets its own (counted when next asked)."""
        for key in self.changed:
            self._memo.pop(key, None)
        stale = {k[:3] for k in self.changed}
        self.changed.clear()
        return stale

    def _count(self, key: Key, floor: str, last: str) -> Backing:
        """The voices with a verdict in [floor, last]. What is before the floor is let go (a
        cell's floor only rises: it can never count again): a voice whose newest verdict is,
        and a voice's older times once it holds many."""
        by_voice = self.cells.get(key, {})
        inside = []
        for voice, entry in list(by_voice.items()):
            if entry.newest < floor:
                for uid in entry.times:
                    del self.of_uid[uid]
                del by_voice[voice]
                continue
            if len(entry.times) >= entry.prune_at:
                for uid in [u for u, t in entry.times.items() if t < floor]:
                    del entry.times[uid]
                    del self.of_uid[uid]
                entry.prune_at = max(64, 2 * len(entry.times))
            if entry.inside(floor, last):
                inside.append(voice)
        return capped_backing(inside, self.cap)
