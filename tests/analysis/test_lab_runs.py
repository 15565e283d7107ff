"""Real lab runs (tests/data/lab, produced by `netvigil lab run`) scored against the lab's
own labels: technique per (network, service, round), onset/end in rounds, throttling rate,
circumvention and outage calls."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from netvigil.evaluate.lab import evaluate_lab

LAB = Path(__file__).resolve().parent.parent / "data" / "lab"
RUNS = sorted(p.name for p in LAB.iterdir() if p.is_dir()) if LAB.exists() else []


@functools.cache
def evaluated(run: str):
    """`evaluate_lab` of a recorded run, once per test process: russia-2022 and quiet-200 are
    each scored by two tests, which only read the result (~0.7 and ~1.3 s of CPU a scoring)."""
    return evaluate_lab(LAB / run)


def correct(res) -> tuple[int, int]:
    total = sum(res.confusion.pairs.values())
    return sum(n for (e, p), n in res.confusion.pairs.items() if e == p), total


@pytest.mark.parametrize("run", RUNS)
def test_each_technique_identified(run):
    res = evaluated(run)
    right, total = correct(res)
    assert total > 0 and right / total >= 0.95, "\n".join(res.lines())
    labelled = {e for (e, _p) in res.confusion.pairs if e != "ok"}
    for tech in labelled:  # every labelled technique is found at least once
        assert res.confusion.per_label()[tech].tp > 0, (tech, "\n".join(res.lines()))


@pytest.mark.slow
def test_russia_2022_incidents_onsets_rates_and_circumvention():
    res = evaluated("russia-2022")
    assert res.incidents == 3  # twitter, facebook, the unrelated outage: one per (country, service) event
    assert all(o["onset_rounds"] is not None and abs(o["onset_rounds"]) <= 2 for o in res.onsets), res.onsets
    assert all(o["end_rounds"] is not None and abs(o["end_rounds"]) <= 2 for o in res.onsets), res.onsets
    assert len(res.rates) == 5 and all(abs(r["error"]) <= 0.2 for r in res.rates), res.rates
    # per network: `works` where the ISP has a VPN path (its exit sits outside every censor),
    # `unknown` where it has none
    assert all(c["got"] == c["expected"] for c in res.circumvention), res.circumvention
    assert sum(c["got"] == "works" for c in res.circumvention) == 4
    assert res.outage.tp > 0 and res.outage.fp == 0
    assert res.throttle_fp.fp == 0


def test_vpn_blocked_run_says_circumvention_fails():
    res = evaluated("vpn-blocked")
    assert res.vpn.tp > 0 and res.vpn.fp == 0, "\n".join(res.lines())


def test_general_slowness_is_not_targeted():
    res = evaluated("throttle-general")
    assert not any(p.startswith("throttled.targeted") for (_e, p) in res.confusion.pairs)
    assert ("throttled.general", "throttled.general") in res.confusion.pairs


def test_circumvention_works_then_the_vpn_is_blocked(tmp_path):
    """Replayed into an Observatory as the collector would: the incident first says
    circumvention works, then (VPN dropped from 11:00) changes to blocked."""
    from netvigil.analysis.analysed_store import AnalysedStore
    from netvigil.ingest.ooni import read_measurements

    ms = sorted(read_measurements([LAB / "vpn-then-blocked" / "measurements.jsonl.zst"]), key=lambda m: m.measurement_start_time)
    before = [m for m in ms if m.measurement_start_time < "2022-03-01 11:00:00"]
    after = [m for m in ms if m.measurement_start_time >= "2022-03-01 11:00:00"]
    with AnalysedStore(tmp_path / "obs") as obs:
        obs.add(before)
        ev = obs.refresh()
        assert [(e.event, e.incident.circumvention) for e in ev] == [("start", "works")]
        obs.add(after)
        ev = obs.refresh()
        assert [(e.event, e.incident.circumvention) for e in ev] == [("change", "blocked")]
        assert "circumvention works -> blocked" in ev[0].detail


@pytest.mark.slow
def test_no_false_throttling_or_blocking_over_200_quiet_lab_rounds():
    res = evaluated("quiet-200")
    assert res.report.read >= 780
    assert res.throttle_fp.tn >= 390 and res.throttle_fp.fp == 0  # the service, on both vantages
    assert res.incidents == 0
    wrong = sum(n for (e, p), n in res.confusion.pairs.items() if e != p)
    assert wrong <= 0.01 * sum(res.confusion.pairs.values())  # control-target noise only
