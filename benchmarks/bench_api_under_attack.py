"""GET /api/v1/status latency while one client attacks, next to its idle latency.

`netvigil serve` (default limits) in its own process on a fresh data dir; a client from
127.0.0.3 asks /api/v1/status sequentially for PHASE_SECONDS, three times:
- idle (the baseline, same run);
- during a slowloris: one address (127.0.0.2) opens 4,200 connections that send a request
  line and headers but never finish them; as the slowloris tool does, every ROUND_SECONDS it
  sends one more header line on each and re-opens the ones the server closed;
- during big-batch uploads: three threads each send 7.9 MB JSONL batches of `{}` lines (under
  the 8 MB cap, so read in full, then refused for being over the burst), each upload from a
  fresh loopback address so the rate limit never spares the server the reading; plus three
  threads declaring 60 MB bodies (refused from the headers).
Prints RESULT lines: p99 (and p50) of each phase, the ratio of p99 to the idle p99, and how
many status requests were not answered 200 (the goal: none).

`--src DIR` serves from another tree's src/ (PYTHONPATH; e.g. `git archive REV src | tar -x
-C /tmp/old`), the attack and the client staying this tree's: to compare two trees in turns
in the same hour.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import free_port, start_serve  # noqa: E402

PHASE_SECONDS = 20.0
SLOWLORIS_CONNECTIONS = 4200
ROUND_SECONDS = 15.0  # the slowloris tool's default
PHASE_LIMIT_S = 120.0  # every attack process stops after this, whatever happens


def get_status(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=("127.0.0.3", 0))
    conn.request("GET", "/api/v1/status")
    return conn.getresponse().status


def status_latencies(port: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=("127.0.0.3", 0))
    lat, failed = [], 0
    end = time.monotonic() + PHASE_SECONDS
    while time.monotonic() < end:
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/api/v1/status")
            r = conn.getresponse()
            r.read()
            failed += r.status != 200
        except (OSError, http.client.HTTPException):
            failed += 1
            conn.close()
        lat.append(time.perf_counter() - t0)
    return lat, failed


def slowloris(port: int, stop, shared: dict) -> None:
    """Hold up to 4,200 connections with half a request; every round send each one more header
    line and re-open the ones the server dropped."""
    held: list[socket.socket] = []
    counts: dict = {}
    deadline = time.monotonic() + PHASE_LIMIT_S
    while not stop.is_set() and time.monotonic() < deadline:
        round_start = time.monotonic()
        alive = []
        for s in held:
            try:
                s.recv(4096)  # an answer (429, 408) or the end: the server let go of it
                s.close()
            except BlockingIOError:  # nothing: still held by the server
                try:
                    s.send(b"X-Slow: 1\r\n")
                    alive.append(s)
                except OSError:
                    s.close()
            except OSError:
                s.close()
        if held:
            counts["still_held_after_a_round"] = len(alive)
        held = alive
        while len(held) < SLOWLORIS_CONNECTIONS and time.monotonic() - round_start < ROUND_SECONDS:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2, source_address=("127.0.0.2", 0))
                s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n")
                s.setblocking(False)
                held.append(s)
                counts["opened"] = counts.get("opened", 0) + 1
            except OSError:
                counts["refused"] = counts.get("refused", 0) + 1
        stop.wait(max(0.0, ROUND_SECONDS - (time.monotonic() - round_start)))
    for s in held:
        s.close()
    shared["slowloris"] = counts


def big_batches(port: int, stop, shared: dict, worker: int) -> None:
    body = b"{}\n" * ((8 << 20) // 3 - 50_000)
    deadline = time.monotonic() + PHASE_LIMIT_S
    counts: dict = {}
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        i += 1
        source = f"127.0.{2 + worker}.{1 + i % 250}"
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
            if worker >= 3:  # declares 60 MB: refused from its headers
                c.putrequest("POST", "/api/v1/submit")
                c.putheader("Content-Length", str(60 << 20))
                c.endheaders()
            else:
                c.request("POST", "/api/v1/submit", body=body)
            r = c.getresponse()
            r.read()
            counts[r.status] = counts.get(r.status, 0) + 1
            c.close()
        except (OSError, http.client.HTTPException):
            counts["error"] = counts.get("error", 0) + 1
    shared[f"uploads {worker}"] = counts


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def during(port: int, attack, n_procs: int) -> tuple[list[float], int, dict]:
    """The status latencies while N_PROCS processes run ATTACK (own processes: no GIL shared with us)."""
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    with ctx.Manager() as manager:
        counts = manager.dict()
        procs = [ctx.Process(target=attack, args=(port, stop, counts, i) if n_procs > 1 else (port, stop, counts))
                 for i in range(n_procs)]
        for p in procs:
            p.start()
        time.sleep(0.5)  # the attack is under way
        try:
            lat, failed = status_latencies(port)
        finally:
            stop.set()
            for p in procs:
                p.join(timeout=PHASE_LIMIT_S)
                if p.is_alive():
                    p.kill()
        totals: dict = {}
        for counts in dict(counts).values():
            for key, n in counts.items():
                totals[key] = totals.get(key, 0) + n
        return lat, failed, totals


def main() -> None:
    src = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv else None
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        # analysis on: /status answers from its first round
        proc = start_serve(Path(tmp) / "obs", port, env={"PYTHONPATH": str(Path(src).resolve())} if src else None)
        try:
            for _ in range(50):  # warm up
                get_status(port)
            idle, idle_failed = status_latencies(port)
            loris, loris_failed, loris_counts = during(port, slowloris, 1)
            batches, batch_failed, batch_counts = during(port, big_batches, 6)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    base = pct(idle, 99)
    print(f"served from {src or 'this tree'}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; slowloris connections {loris_counts}; "
          f"big-batch uploads by status {batch_counts}")
    for name, lat, failed in (("idle(baseline)", idle, idle_failed), ("slowloris", loris, loris_failed),
                              ("big_batches", batches, batch_failed)):
        print(f"RESULT api_status_{name}_p99={pct(lat, 99) * 1000:.1f} ms p50={statistics.median(lat) * 1000:.1f} ms "
              f"ratio={pct(lat, 99) / base:.1f} baseline_p99={base * 1000:.1f} ms not_200={failed}/{len(lat)}")


if __name__ == "__main__":
    main()
