"""Score outage calls against documented windows, per (region, bucket).

A windows CSV has `start_utc,end_utc` (UTC "YYYY-MM-DD HH:MM[:SS]") and optionally
`country` and `region` (other columns, e.g. note and source, are ignored), as docs/design.md's
windows CSV. A row without region applies to every region of its country (a national event);
without country, to every series. Each data bucket of each series is one trial: called when
it lies in one of the series' outage intervals, true when it overlaps a window.
"""

from __future__ import annotations

import csv
import itertools
import math
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Iterable, Sequence

import msgspec

from netvigil.model.signals import OutageInterval, Series
from netvigil.model.times import parse_utc
from netvigil.errors import IngestError, UsageError


class Window(msgspec.Struct):
    """A documented outage window (epoch seconds), for a country or one of its regions."""

    start: int
    end: int
    country: str | None = None
    region: str | None = None

    def applies(self, s: Series) -> bool:
        if self.country and (s.country or "").upper() != self.country.upper():
            return False
        if self.region:
            want = self.region.lower()
            return want in (s.region or "").lower().split("/") or want == (s.region or "").lower()
        return True


class Score(msgspec.Struct):
    """Outage calls scored against the documented windows, per (region, bucket)."""

    tp: int
    fp: int
    fn: int
    tn: int
    precision: float | None
    recall: float | None
    f1: float | None
    onset_errors_min: list[float] = []  # per window: first overlapping onset - window start
    detection_delays_min: list[float] = []  # per window: first overlapping detection - window start

    def line(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"
        return (f"precision={pct(self.precision)} recall={pct(self.recall)} f1={pct(self.f1)} "
                f"tp={self.tp} fp={self.fp} fn={self.fn} tn={self.tn}")


def load_windows(path: Path | str) -> list[Window]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read windows: {exc.strerror}", where=str(p)) from None
    except UnicodeDecodeError:
        raise IngestError("windows file is not UTF-8 text", where=str(p)) from None
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"start_utc", "end_utc"} <= set(reader.fieldnames):
        raise IngestError("windows CSV needs columns start_utc,end_utc", where=f"{p}:1")
    out = []
    for row in reader:
        where = f"{p}:{reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            raise IngestError("wrong number of fields", where=where)
        start = parse_utc(row["start_utc"], where=where)
        end = parse_utc(row["end_utc"], where=where)
        if end <= start:
            raise IngestError("end_utc is not after start_utc", where=where)
        out.append(Window(start=start, end=end, country=(row.get("country") or "").strip() or None,
                          region=(row.get("region") or "").strip() or None))
    return out


class _Reach:
    """Whether some (start, end) pair starts before one point and ends after another: the
    starts sorted, with the latest end among each prefix of them (a lookup per bucket, not
    a pass over every interval and window)."""

    def __init__(self, pairs: Iterable[tuple]):
        ordered = sorted(pairs, key=lambda p: p[0])
        self.starts = [p[0] for p in ordered]
        self.latest_end = list(itertools.accumulate((p[1] for p in ordered), max))

    def any(self, before, after, *, inclusive: bool) -> bool:
        """Some pair with start < `before` (<= when `inclusive`) and end > `after`."""
        i = bisect_right(self.starts, before) if inclusive else bisect_left(self.starts, before)
        return i > 0 and self.latest_end[i - 1] > after


def score(series: Sequence[Series], intervals: Iterable[OutageInterval],
          windows: Sequence[Window]) -> Score:
    """Confusion counts over every (series, bucket) with data, plus onset errors per window."""
    by_key: dict[str, list[OutageInterval]] = {}
    for iv in intervals:
        by_key.setdefault(iv.key, []).append(iv)
    tp = fp = fn = tn = 0
    for s in series:
        calls = _Reach((iv.onset_ts, iv.end_ts if iv.end_ts is not None else math.inf) for iv in by_key.get(s.key, []))
        truths = _Reach((w.start, w.end) for w in windows if w.applies(s))
        for ts in s.times:
            called = calls.any(ts, ts, inclusive=True)  # some onset <= ts < end
            truth = truths.any(ts + s.step, ts, inclusive=False)  # some start < ts + step and ts < end
            tp += called and truth
            fp += called and not truth
            fn += truth and not called
            tn += not called and not truth
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision and recall else (0.0 if precision is not None and recall is not None else None))
    all_ivs = [iv for ivs in by_key.values() for iv in ivs]
    return Score(tp=tp, fp=fp, fn=fn, tn=tn, precision=precision, recall=recall, f1=f1,
                 onset_errors_min=onset_errors(all_ivs, windows),
                 detection_delays_min=onset_errors(all_ivs, windows, detected=True))


def confusion(predicted: set, truth: set, universe: set) -> Score:
    """Precision/recall of predicted vs true members of a finite universe of trials."""
    tp, fp = len(predicted & truth), len(predicted - truth)
    fn, tn = len(truth - predicted), len(universe - predicted - truth)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (2 * precision * recall / (precision + recall) if precision and recall
          else (0.0 if precision is not None and recall is not None else None))
    return Score(tp=tp, fp=fp, fn=fn, tn=tn, precision=precision, recall=recall, f1=f1)


def onset_errors(intervals: Sequence[OutageInterval], windows: Sequence[Window], *,
                 detected: bool = False) -> list[float]:
    """Minutes from each window's documented start to the first call overlapping it
    (its estimated onset, or with detected=True the bucket where it crossed the entry bar)."""
    out = []
    for w in windows:
        hits = [(iv.detected_ts if detected else iv.onset_ts) for iv in intervals
                if iv.onset_ts < w.end and (iv.end_ts is None or iv.end_ts > w.start)]
        if hits:
            out.append((min(hits) - w.start) / 60)
    return out
