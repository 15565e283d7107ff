"""Outage-signal speed, as ratios against baselines measured in the same run.

1. Monash files: read + detect (every region and the national series) vs csv.reader over
   the same files (the I/O floor).
2. The detector on a long hourly series vs ruptures' Pelt (the change-point alternative
   docs/design.md names) on the same series.
3. MRT: read_mrt + replay vs bare mrtparse iteration over the same samples.
Prints `RESULT name=value unit ratio=R baseline=...` lines (benchmarks/run.py).
"""

from __future__ import annotations

import csv
import math
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "third_party"
sys.path.insert(0, str(REPO / "src"))

from netvigil.analysis.outages.detector import detect_outages, national_series  # noqa: E402
from netvigil.model.signals import Series  # noqa: E402
from netvigil.ingest.monash import read_monash  # noqa: E402
from netvigil.ingest.mrt import read_mrt, replay  # noqa: E402


def best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def monash():
    files = sorted((DATA / "monash-ip-observatory").glob("*.csv"))
    rows = sum(sum(1 for _ in f.open(encoding="utf-8")) - 1 for f in files)

    def floor():
        for f in files:
            with f.open(encoding="utf-8", newline="") as fh:
                for _ in csv.reader(fh):
                    pass

    def ours():
        for f in files:
            series = read_monash(f)
            for s in series:
                detect_outages(s)
            if series[0].signal == "connectivity":
                detect_outages(national_series(series, "n"))

    t_floor, t_ours = best(floor), best(ours)
    print(f"RESULT monash_read_detect={rows / t_ours:.0f} rows/s ratio={t_ours / t_floor:.1f} "
          f"baseline=csv.reader {rows / t_floor:.0f} rows/s ({len(files)} files, {rows} rows)")


def detector():
    import numpy as np
    import ruptures

    rng = random.Random(7)
    n = 3_000  # ruptures' exact Pelt is quadratic-ish: keep it to four months of hours
    values = [100 * (1 - 0.1 * max(0.0, math.cos(2 * math.pi * (i % 24) / 24))) * (1 + rng.uniform(-0.03, 0.03))
              for i in range(n)]
    for start in range(250, n, 300):  # an outage every ~12 days
        for i in range(start, start + 30):
            values[i] = rng.uniform(0, 10)
    s = Series(key="bench", signal="connectivity", times=[i * 3600 for i in range(n)], values=values, step=3600)
    found = []
    t_ours = best(lambda: found.append(detect_outages(s)), repeat=3)
    arr = np.array(values).reshape(-1, 1)
    t_rpt = best(lambda: ruptures.Pelt(model="l2", min_size=2, jump=1).fit(arr).predict(pen=5e4), repeat=1)
    print(f"RESULT detector={n / t_ours:.0f} points/s ratio={t_ours / t_rpt:.4f} "
          f"baseline=ruptures Pelt(l2) {n / t_rpt:.0f} points/s; found {len(found[-1])}/{len(range(250, n, 300))} outages")


def mrt():
    import mrtparse

    files = sorted(p for p in (DATA / "mrtparse-samples").iterdir() if not p.name.endswith(".rst"))

    def floor():
        for f in files:
            for _ in mrtparse.Reader(str(f)):
                pass

    def ours():
        for f in files:
            replay(read_mrt(f))

    t_floor, t_ours = best(floor, 5), best(ours, 5)
    print(f"RESULT mrt_read_replay={len(files) / t_ours:.0f} files/s ratio={t_ours / t_floor:.2f} "
          f"baseline=bare mrtparse iteration {len(files) / t_floor:.0f} files/s ({len(files)} samples)")


if __name__ == "__main__":
    monash()
    detector()
    mrt()
