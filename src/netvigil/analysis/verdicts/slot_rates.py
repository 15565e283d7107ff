"""The control rates of one time slot, one per network, kept sorted: the median of every
network's rate but one's own in O(log n) (the verdict engine's reference for a network with no
history of its own, context.RoundContext._baseline).

Why: with 1,000 probes stamping the same seconds, taking `statistics.median` over every other
network's rate for each network re-judged was O(n^2 log n) per slot, and grew each round of a
sustained load (issue #13: 32 -> 242 ms a round). The result is `statistics.median`'s, bit for
bit: the same middle element, or the same `(low + high) / 2` of the two middle ones.
"""

from __future__ import annotations

import bisect


class SlotRates:
    """network -> rate, and the same rates sorted (a multiset: networks may share a rate)."""

    __slots__ = ("by_network", "ordered")

    def __init__(self) -> None:
        self.by_network: dict[tuple, float] = {}
        self.ordered: list[float] = []

    def set(self, network: tuple, rate: float) -> bool:
        """Note NETWORK's rate; False when it was that already (nothing changed)."""
        old = self.by_network.get(network)
        if old is not None:
            if old == rate:
                return False
            del self.ordered[bisect.bisect_left(self.ordered, old)]
        self.by_network[network] = rate
        bisect.insort(self.ordered, rate)
        return True

    def median_without(self, network: tuple) -> float | None:
        """statistics.median of every rate but NETWORK's own (None when no other network has one)."""
        data = self.ordered
        own = self.by_network.get(network)
        if own is None:
            skip, n = len(data), len(data)  # nothing left out
        else:
            skip, n = bisect.bisect_left(data, own), len(data) - 1  # an equal rate is the same value
        if n <= 0:
            return None

        def at(k: int) -> float:
            return data[k] if k < skip else data[k + 1]

        i = n // 2
        if n % 2 == 1:
            return at(i)
        return (at(i - 1) + at(i)) / 2
