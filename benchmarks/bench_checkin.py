"""Probe check-ins per second on loopback (issue #13: at least 2,000/s on 2 cores).

`netvigil serve --no-analysis` in its own process; 200 probes enrolled; then for SECONDS
each, from the same load generator (PROCS processes x THREADS keep-alive connections, each
a request at a time; pre-built request bytes, so the generator leaves the cores to the server):
- baseline: GET /api/v1/health (a light endpoint, same HTTP stack, no fleet work);
- routed: POST /api/v1/check-in on a second server whose check-in goes through FastAPI's
  routing as before collector/fast_path.py (the same answers, the old path);
- check-in: POST /api/v1/check-in as an enrolled probe (credential check, rate bucket,
  body decode, location of the source address, answer).
Prints RESULT lines: requests/s of each and the ratios; non-200 answers are counted and
reported (the rate counts 200s only). BENCH_SECONDS sets a round's length (default 3 s),
BENCH_ROUNDS the rounds (default 5).

Measured (2 cores shared with eight other sessions, load average 11): check-in 1,863/s,
1.49x the routed check-in (1,247/s) and 1.62x GET /api/v1/health (1,147/s); at load average
7, 2,418/s. Before (http.client generator, routed check-in): 795-1,058/s. Where a check-in's
time went (py-spy, routed): h11 parsing and socket writes ~40%, FastAPI/Starlette routing and
middleware ~25%, the fleet's own work (SHA-256 of the secret, bucket, decode, locate, encode)
~5%: the secret's hash is no slow KDF (32 random bytes need none), so nothing to cache there.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import os
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import NETVIGIL, free_port, start_serve  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))  # one round of one phase
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PROCS, THREADS, PROBES = 2, 4, 200


# the server with the check-in routed like any endpoint (the fast path passes it on)
ROUTED = """import sys
from netvigil.collector import fast_path
async def routed(self, scope, receive, send):
    await self.app(scope, receive, send)
fast_path.FastPath.__call__ = routed
from netvigil.cli import main
sys.exit(main(sys.argv[1:]))
"""


def start(data_dir: str, port: int, routed: bool = False) -> subprocess.Popen:
    command = [sys.executable, "-c", ROUTED] if routed else NETVIGIL
    return start_serve(data_dir, port, "--enrol-per-hour", "100000", "--rate", "1000", "--agent-service", "twitter",
                       analysis=False, wait=60, command=command)


def _request(kind: str, auth: str, body: bytes) -> bytes:
    """One request's bytes, made once (the generator's cost per request is a send and a read)."""
    if kind == "baseline":
        return b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    return (f"POST /api/v1/check-in HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _answer(sock: socket.socket, buf: bytearray) -> int:
    """Read one response off a keep-alive connection (Content-Length framed, as uvicorn answers);
    its status. Bytes of the next response stay in `buf`."""
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = bytes(buf[:head_end]).lower()
            i = head.find(b"content-length:")
            length = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
            total = head_end + 4 + length
            while len(buf) < total:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the connection")
                buf += chunk
            status = int(buf[9:12])
            del buf[:total]
            return status
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk


def _worker(port: int, kind: str, auths: list[str], seconds: float, out: mp.Queue) -> None:
    """THREADS keep-alive connections, each a request at a time (a probe waits for its answer);
    requests are pre-built bytes and answers are framed by Content-Length, so the generator
    costs a fraction of what http.client did and leaves the cores to the server."""
    ok, bad = [0], [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    body = json.dumps({"software_name": "bench", "software_version": "0"}).encode()
    requests = [_request(kind, a, body) for a in auths]

    def loop(n: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        i, good, wrong = n, 0, 0
        while time.monotonic() < deadline:
            sock.sendall(requests[i % len(requests)])
            i += THREADS
            if _answer(sock, buf) == 200:
                good += 1
            else:
                wrong += 1
        sock.close()
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


def enrol(port: int, n: int) -> list[str]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    auths = []
    for _ in range(n):
        c.request("POST", "/api/v1/probes/enrol", body=b"{}", headers={"Content-Type": "application/json"})
        auths.append(json.loads(c.getresponse().read())["authorization"])
    return auths


def main() -> int:
    """Both servers up at once; the phases alternate in ROUNDS short rounds and each figure is
    the median of its rounds, so the other users of the machine weigh on all three alike."""
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ports = {}
            for name in ("routed", "fast"):
                ports[name] = free_port()
                procs.append(start(os.path.join(tmp, name), ports[name], routed=name == "routed"))
            auths = {name: enrol(port, PROBES) for name, port in ports.items()}
            got: dict[str, list[tuple[float, int]]] = {"baseline": [], "routed": [], "checkin": []}
            for _ in range(ROUNDS):
                got["baseline"].append(run(ports["fast"], "baseline", auths["fast"]))
                got["routed"].append(run(ports["routed"], "checkin", auths["routed"]))
                got["checkin"].append(run(ports["fast"], "checkin", auths["fast"]))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    (base, base_bad), (routed, routed_bad), (rate, bad) = (
        (statistics.median(r for r, _ in got[k]), sum(b for _, b in got[k])) for k in ("baseline", "routed", "checkin"))
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} (the generator shares the cores); "
          f"{ROUNDS} rounds of {SECONDS:g} s each, medians")
    print(f"RESULT checkin_baseline_health={base:.0f} req/s non200={base_bad}")
    print(f"RESULT checkin_routed={routed:.0f} /s non200={routed_bad} (through FastAPI's routing)")
    print(f"RESULT checkins_per_second={rate:.0f} /s ratio={rate / base:.2f} baseline(health)={base:.0f} req/s "
          f"ratio_to_routed={rate / max(routed, 1):.2f} non200={bad} target=2000/s")
    return 0 if bad == 0 and routed_bad == 0 and base_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
