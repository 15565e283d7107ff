"""The real-data results do not hinge on one threshold: a grid around the shipped rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from netvigil.analysis.outages.detector import detect_outages, national_series
from netvigil.analysis.outages.scoring import load_windows, score
from netvigil.analysis.rules import load_rules
from netvigil.model.times import parse_utc
from netvigil.ingest.monash import read_monash

DATA = Path(__file__).parent / "data"
H = 3600
CASES = [("irn-2019-11-11_gif.csv", "iran_2019_windows.csv", "2019-11-16 16:45"),
         ("ven-2019-07-22_gif.csv", "venezuela_2019_windows.csv", "2019-07-22 20:40")]


@pytest.fixture(scope="module")
def loaded(third_party):
    out = {}
    for csv_name, win, documented in CASES:
        series = read_monash(third_party / "monash-ip-observatory" / csv_name)
        out[csv_name] = (series, national_series(series, "national"),
                         load_windows(DATA / win), parse_utc(documented))
    return out


@pytest.mark.parametrize("enter_ratio", [0.3, 0.4, 0.5, 0.6])
@pytest.mark.parametrize("robust_z", [2.0, 3.0, 5.0])
@pytest.mark.parametrize("baseline_points", [24, 48, 96])
def test_national_outages_found_across_the_grid(loaded, enter_ratio, robust_z, baseline_points):
    base = load_rules().outage
    conn = dataclasses.replace(base.rule("connectivity"), enter_ratio=enter_ratio,
                               robust_z=robust_z, baseline_points=baseline_points)
    rules = dataclasses.replace(base, signals={**base.signals, "connectivity": conn})
    for series, nat, windows, documented in loaded.values():
        ivs = detect_outages(nat, rules)
        assert len(ivs) == 1, [(iv.onset, iv.end) for iv in ivs]
        assert abs(ivs[0].detected_ts - documented) <= 2 * H
        regional = [iv for s in series for iv in detect_outages(s, rules)]
        sc = score(series, regional, windows)
        assert sc.precision >= 0.9 and sc.recall >= 0.6
