"""Target-independent outage detection: series in, outage intervals out (pure functions).

One robust detector serves every signal (connectivity index, probe volume, control
reachability, route visibility, latency): each value is compared with the median of the
signal's own recent *normal* values (median/MAD -- or sqrt(mean) for counts -- so a diurnal
dip or one bad bucket does not move it), entry needs both a large relative change and a large robust z, exit needs recovery
past a gentler ratio (hysteresis), and anomalous values never enter the baseline: a 4-day
national shutdown or 72 nightly curfews stay outages instead of becoming the new normal.
Thresholds live in rules/outage.toml (ids + version), recorded in every interval.

Whether a network's trouble is an outage or censorship is decided once, in
analysis/outages/decision.py (silence from here is one of its inputs).
"""

from __future__ import annotations

import dataclasses
import math
from bisect import bisect_left, insort_right
from collections import deque
from statistics import median
from typing import Iterable, NamedTuple, Sequence

from netvigil.analysis.rules import load_rules
from netvigil.analysis.outages.signal_rules import OutageRules, SignalRule
from netvigil.model.signals import OutageInterval, Series
from netvigil.model.times import utc_text
from netvigil.errors import UsageError

MAX_BUCKETS = 1_000_000  # a filled series longer than this is a timestamp error, not data

__all__ = [
    "detect_outages",
    "volume_outages",
    "control_reachability_outages",
    "route_visibility_outages",
    "national_series",
]


def _check(series: Series) -> None:
    if len(series.times) != len(series.values):
        raise UsageError(f"series {series.key!r}: {len(series.times)} times but "
                         f"{len(series.values)} values")
    if series.step <= 0:
        raise UsageError(f"series {series.key!r}: step must be positive, not {series.step}")
    if any(b <= a for a, b in zip(series.times, series.times[1:])):
        raise UsageError(f"series {series.key!r}: times must be strictly increasing")


class _Baseline:
    """Recent normal values; with a season (e.g. a day), the same phase of recent seasons.

    Probe volume follows the day: 03:00 is compared with recent 03:00s once enough of them
    are known (`min_season_points`), before that with the recent values of any hour.
    """

    def __init__(self, rule: SignalRule):
        self.rule = rule
        self.recent: deque[float] = deque(maxlen=rule.baseline_points)
        self.phases: dict[int, deque[float]] = {}
        # each deque's values kept sorted beside it, so its median is read, not sorted again
        # at every point (the deque holds up to `baseline_points`)
        self.sorted: dict[int, list[float]] = {id(self.recent): []}

    def ready(self) -> bool:
        return len(self.recent) >= self.rule.min_baseline_points

    def _push(self, values: deque[float], v: float) -> None:
        """Append `v`; the sorted copy drops what the deque drops. Equal values stay in the
        order they came (insort_right) and the oldest of them goes first, so the copy is
        exactly sorted(values): the same median, int or float, 0.0 or -0.0."""
        ordered = self.sorted[id(values)]
        if values.maxlen is not None and len(values) == values.maxlen:
            del ordered[bisect_left(ordered, values[0])]
        values.append(v)
        insort_right(ordered, v)

    def add(self, ts: int, v: float) -> None:
        self._push(self.recent, v)
        if self.rule.season_seconds:
            phase = ts % self.rule.season_seconds
            same = self.phases.get(phase)
            if same is None:
                same = self.phases[phase] = deque(maxlen=self.rule.season_count)
                self.sorted[id(same)] = []
            self._push(same, v)

    def values(self, ts: int) -> deque[float]:
        if self.rule.season_seconds:
            same = self.phases.get(ts % self.rule.season_seconds)
            if same is not None and len(same) >= self.rule.min_season_points:
                return same
        return self.recent

    def median(self, values: deque[float]) -> float:
        """statistics.median(values), from the sorted copy."""
        ordered = self.sorted[id(values)]
        n = len(ordered)
        if not n:
            return median(values)  # raises StatisticsError, as it always did
        if n % 2:
            return ordered[n // 2]
        return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


class _Point(NamedTuple):
    """One data point as the detector judged it."""

    ts: int
    value: float
    baseline: float  # nan while the baseline is still being learnt
    worsening: float  # relative to the baseline, in the signal's bad direction
    anomalous: bool


def _flag(series: Series, rule: SignalRule) -> tuple[list[_Point], set[int]]:
    """Every data point judged, and the timestamps where an outage was entered.

    Points already past `exit_ratio` just before an entry are the descent into the outage:
    they join it (onset = start of the descent) and, like all anomalous points, stay out
    of the baseline. If no entry follows, they were normal after all.
    """
    drop = rule.polarity == "drop"
    warmup_end = None
    if rule.season_seconds and series.times:
        warmup = rule.min_season_points * rule.season_seconds
        if series.times[-1] - series.times[0] >= 2 * warmup:
            warmup_end = series.times[0] + warmup  # learn every phase first, judge after
        else:
            rule = dataclasses.replace(rule, season_seconds=0)  # too short for a season
    base = _Baseline(rule)
    out: list[_Point] = []
    pending: list[int] = []  # indices in `out` of a possible descent
    in_outage = False
    entries: set[int] = set()  # timestamps where an interval was entered (detection time)

    def settle(anomalous: bool) -> None:
        for j in pending:
            out[j] = out[j]._replace(anomalous=anomalous)
            if not anomalous:
                base.add(out[j].ts, out[j].value)
        pending.clear()

    for ts, v in zip(series.times, series.values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue  # no data is not a value: gaps are handled by the caller (volume fills 0)
        if not base.ready() or (warmup_end is not None and ts < warmup_end):
            base.add(ts, v)
            out.append(_Point(ts, v, float("nan"), 0.0, False))
            continue
        history = base.values(ts)
        # Anomalous values never enter the baseline, so during an outage it stays what it
        # was at onset -- per phase when the signal has a season (03:00 vs earlier 03:00s).
        b = base.median(history)
        if abs(b) < rule.min_baseline_level or b == 0:
            settle(False)
            base.add(ts, v)
            in_outage = False
            out.append(_Point(ts, v, b, 0.0, False))
            continue
        worse = (b - v) if drop else (v - b)
        rel = worse / abs(b)
        ratio = v / b
        past_exit = ratio < rule.exit_ratio if drop else ratio > rule.exit_ratio
        if in_outage:
            anomalous = past_exit
        else:
            entered = ratio <= rule.enter_ratio if drop else ratio >= rule.enter_ratio
            anomalous = False
            if entered:  # the robust scale is only needed for candidates
                if rule.noise == "poisson":  # counts: the spread of a Poisson count is sqrt(mean)
                    spread = math.sqrt(abs(b))
                else:
                    spread = median(abs(h - b) for h in history) * 1.4826
                scale = max(spread, rule.scale_floor * abs(b), 1e-9)
                anomalous = worse / scale >= rule.robust_z
            if anomalous:
                settle(True)
                entries.add(ts)
            elif past_exit:
                pending.append(len(out))
                out.append(_Point(ts, v, b, rel, False))
                continue
            else:
                settle(False)
        in_outage = anomalous
        if not anomalous:
            base.add(ts, v)
        out.append(_Point(ts, v, b, rel, anomalous))
    settle(False)
    return out, entries


def detect_outages(series: Series, rules: OutageRules | None = None) -> list[OutageInterval]:
    """Outage intervals of one series, each with onset, end (None if ongoing), depth, score."""
    _check(series)
    rules = rules or load_rules().outage
    rule = rules.rule(series.signal)
    points, entries = _flag(series, rule)
    groups: list[list[int]] = []  # indices into points
    normal_run = 0
    for i, p in enumerate(points):
        if p.anomalous:
            if groups and normal_run <= rule.merge_gap_points:
                groups[-1].append(i)
            else:
                groups.append([i])
            normal_run = 0
        else:
            normal_run += 1
    intervals = []
    for idx in groups:
        if len(idx) < rule.min_points:
            continue
        first = points[idx[0]]
        end_ts = points[idx[-1] + 1].ts if idx[-1] + 1 < len(points) else None
        rels = [max(0.0, points[i].worsening) for i in idx]
        detected_ts = next((points[i].ts for i in idx if points[i].ts in entries), first.ts)
        intervals.append(OutageInterval(
            key=series.key,
            signal=series.signal,
            onset=utc_text(first.ts),
            end=utc_text(end_ts),
            onset_ts=first.ts,
            end_ts=end_ts,
            detected=utc_text(detected_ts),
            detected_ts=detected_ts,
            depth=round(max(rels), 4),
            score=round(min(1.0, sum(rels) / len(rels)), 4),
            baseline=round(first.baseline, 4),
            worst_value=(min if rule.polarity == "drop" else max)(points[i].value for i in idx),
            points=len(idx),
            rule_id=rule.id,
            rules_version=rules.version,
            country=series.country,
            region=series.region,
        ))
    return intervals


def volume_outages(key: str, counts: dict[int, int] | Sequence[tuple[int, int]], step: int, *,
                   start: int | None = None, end: int | None = None,
                   rules: OutageRules | None = None, country: str | None = None,
                   signal: str = "volume") -> list[OutageInterval]:
    """Silence as a signal: measurement counts per bucket of one network vs its own baseline.

    `counts` maps bucket start (epoch s, multiple of `step`) to a count; buckets between
    `start` and `end` (default: first and last given) that are absent count as zero.
    `signal="probe_volume"` for crowd-sourced submissions (compared hour-of-day by hour-of-day).
    """
    items = dict(counts)
    if not items:
        return []
    lo = start if start is not None else min(items)
    hi = end if end is not None else max(items)
    lo -= lo % step
    if (hi - lo) // step > MAX_BUCKETS:
        raise UsageError(f"volume series {key!r} would span {(hi - lo) // step} buckets of {step} s",
                         hint="check the timestamps or use a longer step")
    times = list(range(lo, hi + 1, step))
    values = [float(items.get(t, 0)) for t in times]
    return detect_outages(Series(key=key, signal=signal, times=times, values=values,
                                 step=step, country=country), rules)


def control_reachability_outages(key: str, buckets: Iterable[tuple[int, int, int]], step: int, *,
                                 rules: OutageRules | None = None,
                                 country: str | None = None) -> list[OutageInterval]:
    """Share of control-target measurements that worked, per bucket: (ts, ok, total) rows.

    Buckets without control measurements are gaps, not failures (volume covers silence).
    """
    rows = sorted((ts, ok, total) for ts, ok, total in buckets if total > 0)
    times = [ts for ts, _, _ in rows]
    values = [ok / total for _, ok, total in rows]
    return detect_outages(Series(key=key, signal="control_share", times=times, values=values,
                                 step=step, country=country), rules)


def route_visibility_outages(series: Series, rules: OutageRules | None = None) -> list[OutageInterval]:
    """Prefixes visible per bucket (from netvigil.ingest.mrt.visibility_series) collapsing."""
    if series.signal != "route_visibility":
        raise UsageError(f"series {series.key!r} is {series.signal}, not route_visibility")
    return detect_outages(series, rules)


def national_series(regions: Sequence[Series], key: str, rules: OutageRules | None = None) -> Series:
    """Mean of regional series per bucket, only where enough regions reported."""
    if not regions:
        raise UsageError(f"no regional series to aggregate into {key!r}")
    rules = rules or load_rules().outage
    need = max(1, math.ceil(rules.min_region_share * len(regions)))
    acc: dict[int, list[float]] = {}
    for s in regions:
        for t, v in zip(s.times, s.values):
            acc.setdefault(t, []).append(v)
    times = sorted(t for t, vs in acc.items() if len(vs) >= need)
    first = regions[0]
    return Series(key=key, signal=first.signal, times=times,
                  values=[sum(acc[t]) / len(acc[t]) for t in times], step=first.step,
                  country=first.country, region=None, source=first.source)
