"""Probe check-ins per second on loopback (issue #13: at least 2,000/s on 2 cores).

`netvigil serve --no-analysis` in its own process; 200 probes enrolled; then for SECONDS
each, from the same load generator (PROCS processes x THREADS keep-alive connections):
- baseline: GET /api/v1/health (a trivial endpoint, same HTTP stack, no fleet work);
- check-in: POST /api/v1/check-in as an enrolled probe (credential check, rate bucket,
  body decode, location of the source address, answer).
Prints RESULT lines: requests/s of each and the ratio check-in / baseline; non-200 answers
are counted and reported (the rate counts 200s only).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
PROCS, THREADS, PROBES = 2, 4, 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data_dir: str, port: int) -> subprocess.Popen:
    args = [sys.executable, "-m", "netvigil", "serve", "--port", str(port), "--data-dir", data_dir, "--no-analysis",
            "--enrol-per-hour", "100000", "--rate", "1000", "--agent-service", "twitter"]
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    for _ in range(1200):  # at most 60 s
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/api/v1/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit("server did not start")


def _worker(port: int, kind: str, auths: list[str], seconds: float, out: mp.Queue) -> None:
    ok, bad = [0], [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    body = json.dumps({"software_name": "bench", "software_version": "0"}).encode()

    def loop(n: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i, good, wrong = n, 0, 0
        while time.monotonic() < deadline:
            if kind == "baseline":
                c.request("GET", "/api/v1/health")
            else:
                c.request("POST", "/api/v1/check-in", body=body,
                          headers={"Authorization": auths[i % len(auths)], "Content-Type": "application/json"})
                i += THREADS
            r = c.getresponse()
            r.read()
            if r.status == 200:
                good += 1
            else:
                wrong += 1
        with lock:
            ok[0] += good
            bad[0] += wrong

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((ok[0], bad[0]))


def run(port: int, kind: str, auths: list[str]) -> tuple[float, int]:
    out: mp.Queue = mp.Queue()
    share = [auths[p::PROCS] for p in range(PROCS)]
    procs = [mp.Process(target=_worker, args=(port, kind, share[p], SECONDS, out)) for p in range(PROCS)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [out.get(timeout=SECONDS + 120) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t0
    return sum(r[0] for r in results) / elapsed, sum(r[1] for r in results)


def main() -> int:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start(tmp, port)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            auths = []
            for _ in range(PROBES):
                c.request("POST", "/api/v1/probes/enrol", body=b"{}", headers={"Content-Type": "application/json"})
                r = c.getresponse()
                auths.append(json.loads(r.read())["authorization"])
            base, base_bad = run(port, "baseline", auths)
            rate, bad = run(port, "checkin", auths)
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"RESULT checkin_baseline_health={base:.0f} req/s non200={base_bad}")
    print(f"RESULT checkins_per_second={rate:.0f} /s ratio={rate / base:.2f} baseline={base:.0f} req/s "
          f"non200={bad} target=2000/s (load generator and server share the machine's cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
