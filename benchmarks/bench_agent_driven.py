"""An agent round started as a process (`netvigil agent --once`) against the same round told to
a running agent (`netvigil agent --driven`), on loopback: why the lab keeps one agent per
vantage for a whole run (src/netvigil/lab/fleet.py).

One observatory (in-process thread, analysis off) and one data dir (enrolled once, before the
clock starts); each phase runs ROUNDS rounds of the same work (check in, measure twitter and
the control against a resolver that refuses at once, submit). Prints RESULT lines: seconds per
round of each and the ratio, measured in this run. BENCH_ROUNDS sets the rounds (default 5).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def main() -> None:
    from netvigil.collector.fleet import FleetSettings
    from netvigil.observatory.serve import ObservatoryThread

    tmp = Path(tempfile.mkdtemp(prefix="nv-bench-agent-"))
    fleet = FleetSettings(services=("twitter",))
    with ObservatoryThread(tmp / "obs", analysis=False, extra={"fleet": fleet}) as srv:
        base = [sys.executable, "-m", "netvigil", "agent", "--server", srv.url, "--data-dir", str(tmp / "agent"),
                "--timeout", "1", "--resolver", "127.0.0.1:9", "--server-timeout", "5", "--quiet"]
        env = {**os.environ, "COLUMNS": "200"}
        subprocess.run([*base, "--once"], check=True, env=env, capture_output=True)  # enrol, warm caches

        t0 = time.perf_counter()
        for i in range(ROUNDS):
            subprocess.run([*base, "--once", "--scenario-time", f"2022-03-01 0{i % 10}:00:00"], check=True, env=env,
                           capture_output=True)
        once = (time.perf_counter() - t0) / ROUNDS

        p = subprocess.Popen([*base, "--driven"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        p.stdin.write("round\n")  # the process start, outside the clock (a run pays it once)
        p.stdin.flush()
        p.stdout.readline()
        t0 = time.perf_counter()
        for i in range(ROUNDS):
            p.stdin.write(f"round 2022-03-02 0{i % 10}:00:00\n")
            p.stdin.flush()
            assert '"measured":2' in p.stdout.readline()
        driven = (time.perf_counter() - t0) / ROUNDS
        p.stdin.close()
        p.wait(timeout=60)
        stored = srv.app.state.nv.collector.stored
    print(f"RESULT agent round as a process (--once): {once:.2f} s/round")
    print(f"RESULT agent round told to a running agent (--driven): {driven:.2f} s/round")
    print(f"RESULT ratio once/driven: {once / driven:.1f}x ({ROUNDS} rounds each, {stored} measurements stored)")


if __name__ == "__main__":
    main()
