"""The outage detector on constructed series: what it must call, and what it must not."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.analysis.outages.detector import (
    control_reachability_outages,
    detect_outages,
    national_series,
    volume_outages,
)
from netvigil.analysis.rules import load_rules
from netvigil.model.signals import Series
from netvigil.errors import ConfigError, UsageError

H = 3600
T0 = 1_700_000_000 - 1_700_000_000 % H


def hourly(values, signal="connectivity", key="X/region"):
    return Series(key=key, signal=signal, times=[T0 + i * H for i in range(len(values))],
                  values=[float(v) for v in values], step=H, country="X")


def diurnal(n, level=100.0, dip=0.1):
    """A normal day: a night-time dip of `dip` (as the Monash indices have)."""
    return [level * (1 - dip * max(0.0, math.cos(2 * math.pi * (i % 24) / 24))) for i in range(n)]


def test_step_drop_gives_one_interval_with_onset_end_and_depth():
    values = diurnal(72) + [5.0] * 10 + diurnal(24)
    (iv,) = detect_outages(hourly(values))
    assert iv.onset_ts == T0 + 72 * H
    assert iv.end_ts == T0 + 82 * H
    assert iv.points == 10
    assert iv.depth > 0.9 and iv.score > 0.9
    assert iv.rule_id == "outage.connectivity.drop"
    assert iv.rules_version == load_rules().outage.version


def test_diurnal_dips_and_single_bad_bucket_are_not_outages():
    values = diurnal(200, dip=0.15)
    values[100] = 10.0  # one bucket: below min_points
    assert detect_outages(hourly(values)) == []


def test_long_outage_never_becomes_the_baseline_and_ongoing_has_no_end():
    values = diurnal(60) + [3.0] * 200  # longer than the baseline window
    (iv,) = detect_outages(hourly(values))
    assert iv.end is None and iv.end_ts is None
    assert iv.points == 200


def test_gradual_descent_sets_onset_before_detection():
    values = diurnal(60) + [70.0, 40.0, 5.0, 5.0, 5.0] + diurnal(10)
    (iv,) = detect_outages(hourly(values))
    assert iv.onset_ts == T0 + 60 * H  # 70 is already past exit_ratio (0.8): the descent
    assert iv.detected_ts == T0 + 61 * H  # 40 is the first value past enter_ratio (0.5)
    assert iv.onset_ts <= iv.detected_ts < iv.end_ts


def test_rise_polarity_for_latency():
    base = [100.0 + (i % 3) for i in range(60)]
    values = base + [190.0] * 4 + base[:10]
    s = Series(key="L", signal="latency", times=[T0 + i * 3 * H for i in range(len(values))],
               values=values, step=3 * H)
    (iv,) = detect_outages(s)
    assert iv.points == 4 and iv.worst_value == 190.0


def test_silence_as_a_signal_fills_missing_buckets_with_zero():
    counts = {T0 + i * H: 10 for i in range(48)}
    counts.update({T0 + i * H: 11 for i in range(54, 80)})  # hours 48..53 absent: no submissions
    (iv,) = volume_outages("AS64500", counts, H)
    assert (iv.onset_ts, iv.end_ts) == (T0 + 48 * H, T0 + 54 * H)
    assert iv.signal == "volume" and iv.depth == 1.0


def test_sparse_volume_is_too_thin_to_call():
    counts = {T0 + i * H: (1 if i % 2 else 2) for i in range(48)}
    counts.update({T0 + i * H: 0 for i in range(48, 60)})
    assert volume_outages("AS64501", counts, H) == []


def test_control_reachability_share():
    rows = [(T0 + i * H, 9, 10) for i in range(10)] + [(T0 + i * H, 0, 10) for i in range(10, 13)]
    rows += [(T0 + i * H, 10, 10) for i in range(13, 16)]
    rows.append((T0 + 16 * H, 0, 0))  # no control measurement: a gap, not a failure
    (iv,) = control_reachability_outages("AS64502", rows, H)
    assert (iv.onset_ts, iv.end_ts) == (T0 + 10 * H, T0 + 13 * H)


def test_national_series_needs_enough_regions():
    a = hourly([100, 90, 80], key="a")
    b = hourly([50, 50], key="b")
    n = national_series([a, b], "X (national)")
    assert n.times == [T0, T0 + H] and n.values == [75.0, 70.0]  # third bucket: 1 of 2 regions


def test_bad_series_is_a_usage_error():
    with pytest.raises(UsageError, match="strictly increasing"):
        detect_outages(Series(key="k", signal="connectivity", times=[2, 1], values=[1, 1], step=1))
    with pytest.raises(UsageError, match="times but"):
        detect_outages(Series(key="k", signal="connectivity", times=[1], values=[], step=1))
    with pytest.raises(ConfigError, match="no rule for signal"):
        detect_outages(Series(key="k", signal="telepathy", times=[1], values=[1.0], step=1))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), noise=st.floats(0.0, 0.08))
def test_noise_within_a_few_percent_never_raises_an_outage(seed, noise):
    rng = random.Random(seed)
    values = [100 * (1 + rng.uniform(-noise, noise)) for _ in range(150)]
    assert detect_outages(hourly(values)) == []


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), start=st.integers(10, 100), length=st.integers(2, 40),
       floor=st.floats(0.0, 0.4))
def test_an_inserted_collapse_is_found_at_its_start(seed, start, length, floor):
    rng = random.Random(seed)
    values = [100 * (1 + rng.uniform(-0.05, 0.05)) for _ in range(150)]
    for i in range(start, min(150, start + length)):
        values[i] = 100 * floor * rng.uniform(0.5, 1.0)
    ivs = detect_outages(hourly(values))
    assert len(ivs) == 1
    iv = ivs[0]
    assert iv.onset_ts == T0 + start * H
    expected_end = start + length
    assert iv.end_ts == (T0 + expected_end * H if expected_end < 150 else None)


def test_wild_timestamps_are_refused_not_filled():
    with pytest.raises(UsageError, match="would span"):
        volume_outages("AS1", {0: 5, 4_000_000_000: 5}, 60)


def test_volume_noise_is_poisson():
    """Zero when about 4 are usual is 2 sqrt(4) below: called; zero when 2 are usual is not."""
    for usual, called in ((4, True), (9, True), (2, False)):
        counts = {T0 + i * H: usual for i in range(48)}
        counts.update({T0 + i * H: 0 for i in range(48, 52)})
        counts.update({T0 + i * H: usual for i in range(52, 60)})
        assert bool(volume_outages("AS1", counts, H)) is called, usual


def _diurnal_counts(seed: int, days: int = 21):
    """Crowd-sourced probe submissions: ~3 an hour at night, up to ~20 in the afternoon."""
    rng = random.Random(seed)

    def poisson(lam: float) -> int:
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p < limit:
                return k
            k += 1

    counts = {}
    for i in range(24 * days):
        hour = i % 24
        lam = 3 + 17 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour < 22 else 3
        counts[T0 + i * H] = poisson(lam)
    return counts


@pytest.mark.parametrize("seed", range(5))
def test_probe_volume_compares_each_hour_with_the_same_hour_of_previous_days(seed):
    counts = _diurnal_counts(seed)
    silent = range(24 * 15 + 10, 24 * 15 + 16)  # day 15, 10:00-16:00: nothing arrives
    counts.update({T0 + i * H: 0 for i in silent})
    seasonal = volume_outages("AS64500", counts, H, signal="probe_volume")
    assert (T0 + silent[0] * H, T0 + (silent[-1] + 1) * H) in [(iv.onset_ts, iv.end_ts) for iv in seasonal]
    # the rest: at most a couple of short Poisson dips in three weeks
    others = [iv for iv in seasonal if iv.onset_ts != T0 + silent[0] * H]
    assert len(others) <= 2 and all(iv.points <= 4 for iv in others)
    # a plain recent baseline calls every night an outage: why probe volume has a season
    plain = volume_outages("AS64500", counts, H, signal="volume")
    assert len(plain) >= 15
