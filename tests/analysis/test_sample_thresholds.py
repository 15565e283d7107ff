"""How a throughput sample's rate is read is rules data (rules.toml `sample_*` thresholds, so
rules_version covers it), not constants in the observation layer (issue #16)."""

from __future__ import annotations

import dataclasses

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.observations import observe

RULES = load_rules()


def _with(**thresholds: float):
    return dataclasses.replace(RULES, thresholds={**RULES.thresholds, **thresholds})


def _sample(nbytes: int, seconds: float, reads: list[tuple[float, int]]) -> dict:
    """One throughput sample of `nbytes` over `seconds`, with its socket reads (df-008 events)."""
    return {
        "throughput": [{"url": "https://cdn.example/x.jpg", "server_name": "cdn.example", "address": "127.0.0.1:443",
                        "transaction_id": 1, "t0": 0.0, "t": seconds, "bytes": nbytes}],
        "network_events": [{"operation": "read", "num_bytes": n, "t": t, "transaction_id": 1} for t, n in reads],
    }


def _rate(tk: dict, rules) -> float | None:
    (row,) = [o for o in observe(tk, rules) if o.step == "throughput"]
    return row.rate_bps


def test_the_shipped_values_are_in_the_rules():
    th = RULES.thresholds
    assert th["sample_long_seconds"] == 1.0 and th["sample_min_bytes"] == 16_384
    assert th["sample_transient_share"] == 1 / 3


def test_a_small_sample_gives_a_rate_only_above_the_rules_minimum():
    tk = _sample(10_000, 0.5, [(0.1, 5_000), (0.3, 5_000)])
    assert _rate(tk, RULES) is None  # 10,000 bytes < 16,384: set-up time, no rate
    assert _rate(tk, _with(sample_min_bytes=8_000)) == 10_000 * 8 / 0.5  # a short sample: its average


def test_long_samples_and_their_start_up_share_come_from_the_rules():
    # 2 s: a fast first second (start-up), then a steady 100 kB/s
    reads = [(0.05, 100_000), (0.5, 100_000), (1.0, 50_000), (1.25, 25_000), (1.5, 25_000), (1.75, 25_000), (2.0, 25_000)]
    tk = _sample(350_000, 2.0, reads)
    steady = _rate(tk, RULES)  # long: reads after the first third (t > 0.7) over the span from the last read before it
    assert steady == (50_000 + 4 * 25_000) * 8 / (2.0 - 0.5)
    assert _rate(tk, _with(sample_long_seconds=3.0)) == 350_000 * 8 / 2.0  # "short" now: the average
    assert _rate(tk, _with(sample_transient_share=0.6)) == 4 * 25_000 * 8 / (2.0 - 1.0)  # cut at t = 1.19
