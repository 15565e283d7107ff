"""The test helper under many probes at once (issue 12): CPU per test, and where its own
rate measurement degrades.

One `netvigil helper` process on loopback; this process plays C probes at once (C = 1 ..
500), each running one SNI-keyed test as the probe's defaults do: a download and an upload
of 24 kB, each a new TLS connection with its own SNI. For each C we read the helper's CPU
(utime + stime from /proc) and the per-flow rates the client measured (download) and the
helper measured (upload), computed as the analysis does (analysis/throughput.flow_rate).
Baseline, in the same run: the same test with C = 1. The load runs in one process on the
same 2 cores as the helper, all C tests started at once: the worst case.

A helper must never be the slow link that looks like throttling (128-150 kbit/s per flow in
Russia 2021), so "degraded" is the first C whose median per-flow rate falls under half the
C = 1 rate, or under 10x 150 kbit/s, or that has any failed transfer.
Then the 500 probes once more, starting evenly over 10 s (50 tests/s), as unsynchronised
probes would. Because the load generator shares the cores, the helper's busy share at C = 500 (its CPU
over the wall time) says whether the helper or the load set the pace.
Prints RESULT lines; the goal is 500 concurrent probes served with no degradation.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _server import free_port  # noqa: E402 (benchmarks/ is the script's directory)

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (1, 10, 50, 100, 250, 500)
NBYTES = 24_000
THROTTLE_BPS = 150_000
SPREAD_S = 10.0
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def start_helper(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "netvigil", "helper", "--listen", f"127.0.0.1:{port}",
                             "--max-per-client", "4000"], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    if "netvigil helper on" not in line:
        proc.kill()
        raise SystemExit(f"helper did not start: {line.strip()}")
    return proc


def rate_bps(t) -> float | None:  # noqa: ANN001 - a client.Transfer
    """The per-flow rate as the analysis computes it from the samples (None when failed)."""
    from netvigil.analysis.verdicts.throughput import flow_rate

    return None if t.failure else flow_rate(t.samples)


def looks_slow(t) -> bool:  # noqa: ANN001 - a client.Transfer
    """A flow the analysis would time (3+ samples over helper_rate_min_seconds) at under 10x
    the throttle: the helper's load passing for a slow network. A flow that arrived at once
    is only a lower bound there (analysis/verdicts/throughput.py), whatever its wait for a CPU."""
    from netvigil.analysis.rules import load_rules

    min_s = load_rules().thresholds["helper_rate_min_seconds"]
    if t.failure or len(t.samples) < 3 or t.samples[-1][0] - t.samples[0][0] < min_s:
        return False
    r = rate_bps(t)
    return r is not None and r < 10 * THROTTLE_BPS


async def one_test(address, i: int):  # noqa: ANN001, ANN201
    from netvigil.probe import helper_client as client

    down = await client.download(address, f"site{i}.test", NBYTES, timeout=60.0)
    up = await client.upload(address, f"site{i}.test", NBYTES, timeout=60.0)
    return down, up


async def one_test_at(address, i: int, delay: float):  # noqa: ANN001, ANN201
    await asyncio.sleep(delay)
    return await one_test(address, i)


async def level(address, pid: int, c: int, rounds: int = 1, spread_s: float = 0.0) -> dict:  # noqa: ANN001
    """`rounds` times C tests at once (C = 1 runs several rounds: CPU is read in 10 ms ticks);
    with `spread_s`, the C tests start evenly over that many seconds instead (probes in the
    world are not synchronised)."""
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    results = []
    for _ in range(rounds):
        results += await asyncio.gather(*(one_test_at(address, i, spread_s * i / c) for i in range(c)))
    elapsed, cpu = (time.perf_counter() - t0) / rounds, (cpu_seconds(pid) - cpu0) / rounds
    transfers = [t for pair in results for t in pair]
    failed = sum(1 for t in transfers if t.failure)
    down = [r for t, _ in results if (r := rate_bps(t))]
    up = [r for _, t in results if (r := rate_bps(t))]
    slow = sum(1 for t in transfers if looks_slow(t))
    return {"c": c, "cpu_per_test_ms": max(cpu, 1 / TICK / rounds) / c * 1000, "elapsed": elapsed, "failed": failed,
            "timed_slow": slow / max(1, len(transfers)),
            "down_bps": statistics.median(down) if down else 0.0,
            "up_bps": statistics.median(up) if up else 0.0}


async def main() -> int:
    from netvigil.probe.helper_client import HelperAddress

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
    port = free_port()
    proc = start_helper(port)
    address = HelperAddress("127.0.0.1", port)
    try:
        await level(address, proc.pid, 5)  # warm-up: imports, first handshakes
        rows = [await level(address, proc.pid, c, rounds=50 if c == 1 else 1) for c in LEVELS]
        spread = await level(address, proc.pid, 500, spread_s=SPREAD_S)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    base = rows[0]
    degraded = None
    for r in rows:
        slow = min(r["down_bps"], r["up_bps"])
        print(f"  C={r['c']:4d}: helper CPU {r['cpu_per_test_ms']:.2f} ms/test, median per-flow "
              f"down {r['down_bps'] / 1e6:.1f} Mbit/s, up {r['up_bps'] / 1e6:.1f} Mbit/s, "
              f"{r['failed']} failed, {r['elapsed']:.2f} s, {r['timed_slow'] * 100:.0f}% of flows timed "
              f"as slow as 10x the throttle", flush=True)
        bad = (r["failed"] or slow < 10 * THROTTLE_BPS
               or r["down_bps"] < base["down_bps"] / 2 or r["up_bps"] < base["up_bps"] / 2)
        if bad and degraded is None:
            degraded = r["c"]
    top = rows[-1]
    print(f"RESULT helper_cpu_per_test={top['cpu_per_test_ms']:.2f} ms at C={top['c']} "
          f"ratio={top['cpu_per_test_ms'] / base['cpu_per_test_ms']:.2f} "
          f"baseline=C=1 {base['cpu_per_test_ms']:.2f} ms (a test: {NBYTES} B down + up, 2 TLS connections)")
    for r in rows[1:]:
        print(f"RESULT helper_flow_rate_c{r['c']}={min(r['down_bps'], r['up_bps']) / 1e6:.2f} Mbit/s "
              f"ratio={min(r['down_bps'] / base['down_bps'], r['up_bps'] / base['up_bps']):.2f} "
              f"baseline=C=1 down {base['down_bps'] / 1e6:.1f} up {base['up_bps'] / 1e6:.1f} Mbit/s "
              f"failed={r['failed']}")
    busy = top["cpu_per_test_ms"] * top["c"] / 1000 / top["elapsed"]
    print(f"RESULT helper_busy_at_c{top['c']}={busy * 100:.0f} % of one core "
          f"ratio={busy:.2f} baseline=one core fully busy (under 1: the load, not the helper, set the pace) "
          f"capacity={1000 / top['cpu_per_test_ms']:.0f} tests/s per core")
    print(f"RESULT helper_flow_rate_500_over_{SPREAD_S:.0f}s={min(spread['down_bps'], spread['up_bps']) / 1e6:.2f} Mbit/s "
          f"ratio={min(spread['down_bps'] / base['down_bps'], spread['up_bps'] / base['up_bps']):.2f} "
          f"baseline=C=1 (500 probes starting evenly over {SPREAD_S:.0f} s, {500 / SPREAD_S:.0f} tests/s) "
          f"failed={spread['failed']} cpu_per_test={spread['cpu_per_test_ms']:.2f} ms")
    worst = max(rows + [spread], key=lambda r: r["timed_slow"])
    print(f"RESULT helper_flows_timed_slow_max={worst['timed_slow'] * 100:.1f} % at C={worst['c']} "
          f"ratio={worst['timed_slow']:.3f} baseline=C=1 {base['timed_slow'] * 100:.1f} % (flows the analysis "
          f"would time under 10x {THROTTLE_BPS // 1000} kbit/s: the helper's load passing for a slow network)")
    print(f"RESULT helper_degrades_at={degraded or 'none'} clients "
          f"ratio={(degraded or top['c']) / 500:.2f} baseline=goal 500 concurrent probes, "
          f"floor 10x {THROTTLE_BPS // 1000} kbit/s and half the C=1 rate (goal: none)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
