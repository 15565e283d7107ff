"""Arrival-to-status latency: from a measurement's 200 to its effect on GET /api/v1/status.

`netvigil serve` (analysis on, chdb) in its own process. Background load: the real OONI
corpus of bench_collector_ingest (re-dated) submitted in JSONL batches at a target rate.
Each load lasts 10 s, the 5,000/s one 30 s (a backlog that grows shows as latency growing
over the phase). Every second a marker (one probe round of a recorded lab run, tests/data/lab/russia-2022:
a network's service and control measurements, given a network of its own) is submitted; the time until /api/v1/status?asn=...
shows it is its latency. Baseline, same run: the same marker on the idle server.
Prints RESULT lines with p50/max latency per load and the ratio to idle.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import bench_collector_ingest as ingest  # noqa: E402
import msgspec  # noqa: E402

from netvigil.model.measurement import encode_measurement  # noqa: E402
from netvigil.report.replay import load_run, rounds  # noqa: E402

TOKEN = ingest.TOKEN
PHASE_SECONDS = {0: 10.0, 200: 10.0, 1000: 10.0, 5000: 30.0}


class Work:
    """JSONL batches of distinct measurements, made as they are sent: each corpus item is
    encoded once with a placeholder time, and every copy gets a time of its own (a new uid)."""

    def __init__(self, items: list[dict]):
        self.templates = [json.dumps(dict(m, measurement_start_time="@TIME@"), separators=(",", ":")).encode()
                          for m in items]
        self.i = 0

    def batch(self) -> bytes:
        lines = []
        for _ in range(ingest.BATCH):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_600_000_000 + self.i)).encode()
            lines.append(self.templates[self.i % len(self.templates)].replace(b"@TIME@", stamp))
            self.i += 1
        return b"\n".join(lines) + b"\n"


def post(port: int, path: str, body: bytes) -> dict:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", path, body=body, headers={"Authorization": f"Bearer {TOKEN}"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"{path}: HTTP {r.status} {data[:200]!r}")
    return json.loads(data)


def status_rows(port: int, asn: str) -> list:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        c.request("GET", f"/api/v1/status?asn={asn}")
        r = c.getresponse()
        data = r.read()
    except OSError:  # an overloaded machine: counted as not seen yet
        return []
    return json.loads(data).get("results", []) if r.status == 200 else []


def submit_marker(port: int, samples, k: int, network: int | None = None) -> str:
    """Marker K on network NETWORK (default: a network of its own, AS4200000000+K)."""
    net = k if network is None else network
    asn = f"AS{4200000000 + net}"
    stamp = datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S")
    lines = []
    for m in samples:
        d = msgspec.json.decode(encode_measurement(m))
        d.pop("measurement_uid", None)
        d.update(probe_asn=asn, probe_network_name=f"marker-{net}", measurement_start_time=stamp,
                 test_start_time=stamp, report_id=f"marker{k}")
        d["annotations"] = dict(d.get("annotations") or {}, run_id=f"marker-{k}")
        lines.append(msgspec.json.encode(d))
    post(port, "/api/v1/submit", b"\n".join(lines))
    return asn


def health(port: int) -> dict:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", "/api/v1/health")
    return json.loads(c.getresponse().read())


def background(port: int, work: Work, rate: float, seconds: float, sent: list[int]) -> None:
    """Offer `rate` measurements/s in JSONL batches for `seconds`."""
    if rate <= 0:
        return
    interval = ingest.BATCH / rate
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.monotonic()
    t_next = t0
    while time.monotonic() - t0 < seconds:
        now = time.monotonic()
        if now < t_next:
            time.sleep(min(t_next - now, 0.05))
            continue
        c.request("POST", "/api/v1/submit", body=work.batch(), headers={"Authorization": f"Bearer {TOKEN}"})
        r = c.getresponse()
        r.read()
        sent[0] += ingest.BATCH
        t_next += interval


def phase(port: int, samples, work: Work, rate: float, first_marker: int) -> tuple[list[float], float, float, float]:
    """Load for PHASE_SECONDS[rate] with a marker each second; latencies, achieved rate, drain time,
    analysis throughput (measurements analysed per second from the phase's start to drained)."""
    analysed0 = health(port)["analysed"]
    sent = [0]
    t = threading.Thread(target=background, args=(port, work, rate, PHASE_SECONDS[rate], sent))
    t0 = time.monotonic()
    t.start()
    markers: dict[str, float] = {}
    seen: dict[str, float] = {}
    k = first_marker
    while time.monotonic() - t0 < PHASE_SECONDS[rate]:
        markers[submit_marker(port, samples, k)] = time.monotonic()
        k += 1
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            for asn, t_sub in markers.items():
                if asn not in seen and status_rows(port, asn):
                    seen[asn] = time.monotonic() - t_sub
            time.sleep(0.05)
    t.join()
    achieved = sent[0] / (time.monotonic() - t0)
    t_end = time.monotonic()
    while len(seen) < len(markers) and time.monotonic() - t_end < 120:
        for asn, t_sub in markers.items():
            if asn not in seen and status_rows(port, asn):
                seen[asn] = time.monotonic() - t_sub
        time.sleep(0.1)
    h = health(port)  # let the backlog drain before the next phase
    while h["analysed"] < h["measurements"] and time.monotonic() - t_end < 240:
        time.sleep(0.5)
        h = health(port)
    analysed_rate = (h["analysed"] - analysed0) / (time.monotonic() - t0)
    return [seen.get(a, float("inf")) for a in markers], achieved, time.monotonic() - t_end, analysed_rate


def main() -> None:
    first_round = next(rounds(load_run(HERE.parent / "tests" / "data" / "lab" / "russia-2022")))[1]
    asn0 = first_round[0].probe_asn
    samples = [m for m in first_round if m.probe_asn == asn0]
    items = ingest.corpus()
    work = Work(items)
    with tempfile.TemporaryDirectory() as tmp:
        port = 8600 + (os.getpid() + 7) % 1000
        proc = ingest.start_server(os.path.join(tmp, "obs"), port, analysis=True)
        try:
            results = {}
            for rate in PHASE_SECONDS:
                results[rate] = phase(port, samples, work, rate, first_marker=len(results) * 1000)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    idle = statistics.median(results[0][0])
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    for rate, (lat, achieved, drain, analysed_rate) in results.items():
        finite = [x for x in lat if x != float("inf")]
        p50 = statistics.median(lat)
        print(f"RESULT arrival_to_status_p50_at_{rate}_per_s={p50:.2f} s max={max(lat):.2f} s "
              f"ratio={p50 / idle:.1f} baseline(idle)={idle:.2f} s accepted={achieved:.0f}/s "
              f"markers={len(lat)} seen={len(finite)} backlog_drained_in={drain:.0f} s analysed={analysed_rate:.0f}/s goal<5s")
        third = len(lat) // 3
        if third >= 3:  # a backlog that keeps growing shows as a later third slower than the first
            print(f"  p50 by third of the phase: {statistics.median(lat[:third]):.2f} s, "
                  f"{statistics.median(lat[third:2 * third]):.2f} s, {statistics.median(lat[2 * third:]):.2f} s")


if __name__ == "__main__":
    main()
