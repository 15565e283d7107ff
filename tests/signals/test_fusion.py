"""Outage vs censorship vs both, from target-independent signals and service evidence."""

from __future__ import annotations

from netvigil.analysis.outage_signals import fuse, volume_outages
from netvigil.model.signals import CensorshipBucket

H = 3600
T0 = 1_700_000_000 - 1_700_000_000 % H


def silence(start: int, hours: int):
    counts = {T0 + i * H: 12 for i in range(48)}
    counts.update({T0 + i * H: 12 for i in range(48 + start + hours, 80)})
    counts.update({T0 + i * H: 0 for i in range(48 + start, 48 + start + hours)})
    return volume_outages("AS64500", counts, H)


def bucket(i, service_ok, service_total, control_ok, control_total):
    return CensorshipBucket(T0 + i * H, service_ok, service_total, control_ok, control_total)


def test_service_fails_while_controls_work_is_censorship():
    ev = [bucket(i, 0, 5, 5, 5) for i in range(40, 46)]
    call = fuse("AS64500", [], ev, step=H)
    assert call.call == "censorship"
    assert call.censorship_buckets == 6
    assert "fusion.outage_vs_censorship" in call.rule_ids
    assert any("controls worked" in r for r in call.reasons)


def test_volume_collapse_with_everything_failing_is_an_outage():
    ivs = silence(0, 6)
    assert ivs
    ev = [bucket(i, 0, 3, 0, 3) for i in range(48, 54)]  # the few that arrived: all failed
    call = fuse("AS64500", ivs, ev, step=H)
    assert call.call == "outage"
    assert call.censorship_buckets == 0
    assert "outage.volume.silence" in call.rule_ids


def test_block_before_an_outage_is_both():
    ivs = silence(0, 6)
    ev = [bucket(i, 0, 5, 5, 5) for i in range(40, 46)]  # blocked before the uplink went down
    ev += [bucket(i, 0, 2, 0, 2) for i in range(48, 54)]
    call = fuse("AS64500", ivs, ev, step=H)
    assert call.call == "both"


def test_failures_during_the_outage_do_not_count_as_censorship():
    ivs = silence(0, 6)
    ev = [bucket(i, 0, 4, 4, 4) for i in range(48, 54)]  # inside the outage interval
    assert fuse("AS64500", ivs, ev, step=H).call == "outage"


def test_all_fine_is_none_and_nothing_is_unknown():
    ev = [bucket(i, 5, 5, 5, 5) for i in range(10)]
    assert fuse("AS64500", [], ev, step=H).call == "none"
    assert fuse("AS64500", [], [], step=H).call == "unknown"


def test_buckets_without_a_control_are_not_judged():
    ev = [bucket(i, 0, 3, 0, 0) for i in range(10)]  # service fails, no control measured
    assert fuse("AS64500", [], ev, step=H).call == "none"


def test_one_probe_round_is_enough_and_the_buckets_are_listed():
    ev = [bucket(0, 1, 1, 1, 1), bucket(1, 0, 1, 0, 1), bucket(2, 0, 1, 1, 1)]
    call = fuse("AS64500", [], ev, step=H)
    assert call.call == "both"
    assert call.outage_bucket_starts == [T0 + H] and call.censored_bucket_starts == [T0 + 2 * H]
