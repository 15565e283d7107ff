"""Sustained ingestion on loopback with durability on, against appending the same bytes.

Corpus: the 78 real OONI measurements in tests/data/third_party (explorer fixtures + probe-cli QA
measurements, ~18 KB on average), re-dated so that each copy is a distinct measurement.
Target: `netvigil serve --no-analysis` in its own process (fsync before every 200, group
commit), fed by one client process with several keep-alive connections sending JSONL
batches (POST /api/v1/submit), then OONI-protocol single submissions (POST /report/{id}).
Baseline, same run, same bytes: append each batch to a file and fdatasync it (the same
fsync policy: durable before the acknowledgement of each batch).
Prints RESULT lines (measurements/s and the ratio to the baseline).
"""

from __future__ import annotations

import glob
import gzip
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import start_serve  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "third_party"
TOKEN = "bench"
BATCH = 250
SECONDS = 8.0


def corpus() -> list[dict]:
    with gzip.open(DATA / "ooni-explorer-fixtures" / "raw_measurements.jsonl.gz", "rt") as fh:
        items = [json.loads(line) for line in fh if line.strip()]
    for f in sorted(glob.glob(str(DATA / "ooni-probe-cli-minipipeline" / "generated" / "*" / "measurement.json"))):
        items.append(json.load(open(f)))
    for m in items:
        m.pop("measurement_uid", None)
        m.setdefault("measurement_start_time", "2022-01-01 00:00:00")
    return items


def batches(items: list[dict], n: int) -> list[bytes]:
    out, lines = [], []
    for i in range(n):
        m = dict(items[i % len(items)])
        m["measurement_start_time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_600_000_000 + i))
        lines.append(json.dumps(m, separators=(",", ":")).encode())
        if len(lines) == BATCH:
            out.append(b"\n".join(lines) + b"\n")
            lines = []
    return out


def start_server(data_dir: str, port: int, *, analysis: bool = False, wait: float = 60.0) -> subprocess.Popen:
    """`netvigil serve` in its own process with this benchmark's probe token, returned once it
    answers (and, with `analysis`, once its analysis runs): _server.start_serve."""
    return start_serve(data_dir, port, analysis=analysis, wait=wait, env={"NETVIGIL_PROBE_TOKENS": TOKEN})


def run_batches(port: int, work: list[bytes], threads: int) -> tuple[int, float]:
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    deadline = time.monotonic() + SECONDS

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                if state["next"] >= len(work):
                    return
                body = work[state["next"]]
                state["next"] += 1
            c.request("POST", "/api/v1/submit", body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                raise SystemExit(f"HTTP {r.status}: {data[:200]!r}")
            with lock:
                state["done"] += json.loads(data)["count"]

    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return state["done"], time.monotonic() - t0


def run_single(port: int, items: list[dict], seconds: float = 3.0) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/report", body=b"{}", headers=headers)
    rid = json.loads(c.getresponse().read())["report_id"]
    bodies = []
    for i in range(4000):
        m = dict(items[i % len(items)])
        m["measurement_start_time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_700_000_000 + i))
        bodies.append(json.dumps({"format": "json", "content": m}).encode())
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds and n < len(bodies):
        c.request("POST", f"/report/{rid}", body=bodies[n], headers=headers)
        r = c.getresponse()
        r.read()
        assert r.status == 200
        n += 1
    return n, time.monotonic() - t0


def baseline(work: list[bytes], path: str) -> tuple[int, float]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    t0 = time.monotonic()
    n = 0
    for body in work:
        os.write(fd, body)
        os.fdatasync(fd)
        n += body.count(b"\n")
    os.close(fd)
    return n, time.monotonic() - t0


def main() -> None:
    items = corpus()
    work = batches(items, 60_000)
    avg = sum(len(b) for b in work) / (len(work) * BATCH)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        base_n, base_t = baseline(work, os.path.join(tmp, "baseline.jsonl"))
        port = 8600 + os.getpid() % 1000
        proc = start_server(os.path.join(tmp, "obs"), port)
        try:
            n, t = run_batches(port, work, threads=8)
            s_n, s_t = run_single(port, items)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        stored = sum(p.stat().st_size for p in Path(tmp, "obs", "log").glob("seg-*.jsonl"))
    rate, base_rate, single = n / t, base_n / base_t, s_n / s_t
    print(f"corpus: {len(items)} real OONI measurements, {avg / 1024:.1f} KB average, batches of {BATCH}; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; log {stored / 1e6:.0f} MB")
    print(f"RESULT collector_ingest_batch={rate:.0f} measurements/s ({rate * avg / 1e6:.0f} MB/s) "
          f"ratio={rate / base_rate:.3f} baseline={base_rate:.0f} measurements/s (append+fdatasync per batch) "
          f"goal>=5000")
    print(f"RESULT collector_ingest_single={single:.0f} measurements/s (one OONI submission per request, "
          f"one connection) ratio={single / base_rate:.4f}")


if __name__ == "__main__":
    main()
