"""The verdict engine's reference rate of a network with no history, for every network of one
time slot (issue #13: analysis/verdicts/slot_rates.py), against the baseline measured in the
same run: `statistics.median` over every other network's rate, as RoundContext._baseline took
it before (O(n) per network, O(n^2 log n) a slot; 32 -> 242 ms a round in a profiled
sustained load with 1,000 probes stamping the same seconds).

Each pass notes one changed rate (as a round does) and asks every network's reference (as
`pending` re-judging every open round of the slot does). Results are checked equal.

    .venv/bin/python benchmarks/bench_slot_median.py                  # 1,000 networks
    .venv/bin/python benchmarks/bench_slot_median.py --networks 200 --passes 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from netvigil.analysis.verdicts.slot_rates import SlotRates  # noqa: E402


def reference(by_network: dict, network: tuple) -> float | None:
    others = [r for n, r in by_network.items() if n != network]
    return statistics.median(others) if others else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: bench_slot_median.py --networks 1000 --passes 10")
    ap.add_argument("--networks", type=int, default=1000, help="networks in the slot (default 1000)")
    ap.add_argument("--passes", type=int, default=10, help="rounds, each asking every network (default 10)")
    args = ap.parse_args(argv)
    if min(args.networks, args.passes) < 1:
        ap.error("every number must be positive")
    rng = random.Random(13)
    nets = [("XX", f"AS{i}", "direct") for i in range(args.networks)]
    slot = SlotRates()
    for n in nets:
        slot.set(n, rng.choice([1e6, 2e6, 5e6]) * rng.uniform(0.5, 1.5))
    timings = {"statistics.median (baseline)": 0.0, "sorted slot (now)": 0.0}
    for _ in range(args.passes):
        slot.set(rng.choice(nets), rng.uniform(1e5, 1e7))
        t0 = time.process_time()
        want = [reference(slot.by_network, n) for n in nets]
        t1 = time.process_time()
        got = [slot.median_without(n) for n in nets]
        t2 = time.process_time()
        if got != want:
            raise SystemExit("the sorted slot's median differs from statistics.median")
        timings["statistics.median (baseline)"] += t1 - t0
        timings["sorted slot (now)"] += t2 - t1
    per = {k: v / (args.passes * args.networks) * 1e6 for k, v in timings.items()}
    for k, v in per.items():
        print(f"  {k:30s} {v:9.2f} us per network")
    base, now = per["statistics.median (baseline)"], per["sorted slot (now)"]
    print(f"RESULT slot_median networks={args.networks} baseline_us={base:.2f} now_us={now:.2f} "
          f"ratio={base / max(now, 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
