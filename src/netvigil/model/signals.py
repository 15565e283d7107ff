"""Typed boundaries of the outage-signal code: a time series in, outage intervals out.

Every reader (Monash CSVs, MRT dumps, the store's per-bucket counts) produces `Series`;
every detector returns `OutageInterval`s. Times are UTC epoch seconds of bucket starts, so
series from different sources line up without time-zone guesswork downstream.
"""

from __future__ import annotations

import msgspec

SIGNALS = ("connectivity", "volume", "probe_volume", "control_share", "route_visibility", "latency")


class Series(msgspec.Struct):
    """One signal for one place (region, network, prefix or origin AS), bucketed in time."""

    key: str  # e.g. "IRN/Tehran/Tehran", "AS65015", "IRN (national)"
    signal: str  # one of SIGNALS
    times: list[int]  # bucket starts, UTC epoch seconds, increasing
    values: list[float]
    step: int  # bucket length in seconds
    country: str | None = None  # ISO code as the source spells it (IRN, VEN, ...)
    region: str | None = None
    source: str = ""


class OutageInterval(msgspec.Struct):
    """A stretch where a signal was far worse than its own baseline."""

    key: str
    signal: str
    onset: str  # UTC "YYYY-MM-DD HH:MM:SS": start of the first anomalous bucket
    end: str | None  # start of the first recovered bucket; None while ongoing at series end
    onset_ts: int
    end_ts: int | None
    detected: str  # UTC: first bucket past the entry threshold (when a live monitor would alert)
    detected_ts: int
    depth: float  # worst relative deviation from baseline (1.0 = signal gone)
    score: float  # mean relative deviation over the interval, 0..1
    baseline: float  # baseline level when the interval began
    worst_value: float
    points: int  # anomalous buckets in the interval
    rule_id: str
    rules_version: str
    country: str | None = None
    region: str | None = None
