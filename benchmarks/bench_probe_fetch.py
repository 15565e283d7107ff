"""1,000 HTTPS fetches with full traces vs Debian's `curl --parallel` (issue 3).

Both fetch https://good.test/ 1,000 times from the same loopback server (its own process,
tests/probe/servers.py), each fetch a new TCP connection and a full TLS handshake (the server
closes after every response; curl runs with --no-sessionid so it resumes no TLS session),
50 at a time, name pinned to the server's address (no DNS on either side). Ours records
every event (connect, each read/write, handshake, HTTP transaction) and the df records.
Goal: ours within 2x of curl's time (ratio <= 2).
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 1000
PARALLEL = 50
HOST = "good.test"
IP = "127.0.0.2"


def start_world() -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/probe/servers.py"), "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


async def ours(info: dict) -> tuple[float, int, int]:
    from netvigil.probe.endpoint import MeasureRun, Target, chain
    from netvigil.probe.settings import ProbeSettings, parse_port_map
    from netvigil.probe.trace import Trace

    settings = ProbeSettings(ca_file=info["ca_file"], port_map=parse_port_map(info["port_map"]), timeout=10.0)
    trace = Trace(max_events=10_000_000)
    ctx = MeasureRun(trace, settings, asyncio.Semaphore(PARALLEL))
    target = Target(domain=HOST, protocols=("tcp", "tls", "https"))
    t0 = time.perf_counter()
    c0 = time.process_time()
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(chain(ctx, target, IP, scheme="https", tls=True, http=True)) for _ in range(N)]
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    ok = sum(1 for t in tasks if t.result())
    return elapsed, ok, len(trace.network_events), cpu


def curl(info: dict) -> tuple[float, int]:
    port = info["port"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "urls.cfg"
        cfg.write_text("".join(f'url = "https://{HOST}:{port}/"\noutput = "/dev/null"\n' for _ in range(N)))
        cmd = ["curl", "--parallel", "--parallel-max", str(PARALLEL), "--no-sessionid", "--silent",
               "--cacert", info["ca_file"], "--resolve", f"{HOST}:{port}:{IP}", "--noproxy", "*",
               "--write-out", "%{http_code}\n", "--config", str(cfg)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, r.stdout.split().count("200"), cpu


def main() -> int:
    if shutil.which("curl") is None:
        print("curl not found (apt-get install curl)", file=sys.stderr)
        return 1
    proc, info = start_world()
    try:
        curl(info)  # warm-up of both
        asyncio.run(ours(info))
        runs = []
        for _ in range(3):
            t_curl, ok_curl, cpu_curl = curl(info)
            t_ours, ok_ours, events, cpu_ours = asyncio.run(ours(info))
            runs.append((t_ours / t_curl, t_ours, t_curl, ok_ours, ok_curl, events, cpu_ours, cpu_curl))
        runs.sort()
        ratio, t_ours, t_curl, ok_ours, ok_curl, events, cpu_ours, cpu_curl = runs[1]  # median run
        print(f"curl --parallel: {N} fetches in {t_curl:.2f} s ({ok_curl} x 200)")
        print(f"netvigil traced: {N} fetches in {t_ours:.2f} s ({ok_ours} ok, {events} network events)")
        print(f"RESULT probe_https_fetches={t_ours:.3f} s ratio={ratio:.2f} baseline={t_curl:.3f} s "
              f"(curl --parallel, same server; goal ratio <= 2)")
        print(f"RESULT probe_https_fetches_client_cpu={cpu_ours:.3f} s ratio={cpu_ours / cpu_curl:.2f} "
              f"baseline={cpu_curl:.3f} s (client CPU only: the wall-clock race is bound by the Python server)")
        return 0 if ok_ours == N and ok_curl == N else 1
    finally:
        proc.stdin.close()
        proc.wait(10)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    sys.exit(main())
