"""The median of every other network's control rate in a time slot (verdicts/slot_rates.py), kept
sorted so a network's reference costs O(log n) (issue #13), gives exactly what
`statistics.median` over the others gave: the same value, bit for bit, odd and even counts,
shared rates, a network's rate changed, ints and floats mixed."""

from __future__ import annotations

import statistics
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.context import RoundContext
from netvigil.analysis.verdicts.slot_rates import SlotRates

NETWORKS = [("RU", f"AS{i}", "direct") for i in range(12)] + [("RU", "AS1", "vpn")]
RATES = st.one_of(
    st.sampled_from([1.0, 2.5, 2.5000000000000004, 3, 1e6, 7e-3]),  # shared values, an int
    st.floats(min_value=1e-3, max_value=1e12, allow_nan=False),
    st.integers(min_value=1, max_value=10**9),
)
SLOT = st.lists(st.tuples(st.sampled_from(NETWORKS), RATES), max_size=40)


def reference(by_network: dict, network: tuple):
    """What RoundContext._baseline computed before: statistics.median over the others."""
    others = [r for n, r in by_network.items() if n != network]
    return statistics.median(others) if others else None


def same(a, b) -> bool:
    """The same number bit for bit (an int rate and an equal float tie: the same value)."""
    if a is None or b is None:
        return a is b
    return struct.pack("<d", a) == struct.pack("<d", b)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(SLOT)
def test_median_without_own_rate_is_statistics_median_of_the_others(updates):
    slot, truth = SlotRates(), {}
    for network, rate in updates:
        changed = slot.set(network, rate)
        assert changed == (truth.get(network) != rate)
        truth[network] = rate
        assert sorted(slot.ordered) == slot.ordered and len(slot.ordered) == len(truth)
        for n in NETWORKS:  # every network, those with no rate of their own too
            got, want = slot.median_without(n), reference(truth, n)
            assert same(got, want), (n, truth, got, want)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(SLOT, st.sampled_from(NETWORKS))
def test_the_round_context_takes_the_others_median_when_it_has_no_history(updates, network):
    ctx = RoundContext(load_rules())
    slot = ctx._slot(ctx.slot_rates, "w1", SlotRates)
    truth = {}
    for n, rate in updates:
        slot.set(n, rate)
        truth[n] = rate
    got, basis = ctx._baseline(network, "w1")
    want = reference(truth, network)
    assert same(got, want) and basis == ("other_vantages_same_time" if want is not None else "")
    assert ctx._baseline(network, "w2") == (None, "")  # another slot: nothing to compare with
