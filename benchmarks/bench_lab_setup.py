"""Set-up and teardown time of the russia-2022 lab (issue 4: goal < 5 s each on 2 cores).

Baseline, measured in the same run: creating and deleting the same number of bare network
namespaces with one `ip netns add`/`del` each (the floor any namespace lab pays). Prints
RESULT lines with the ratio to that baseline. Needs root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from netvigil.lab.cleanup import lab_namespaces  # noqa: E402
from netvigil.lab.runner import Lab, prerequisites  # noqa: E402
from netvigil.lab.scenario import load_scenario  # noqa: E402

REPEATS = 3


def bare_namespaces(n: int) -> tuple[float, float]:
    names = [f"nv-bench-{i}" for i in range(n)]
    t0 = time.monotonic()
    for name in names:
        subprocess.run(["ip", "netns", "add", name], check=True)
    t1 = time.monotonic()
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=True)
    return t1 - t0, time.monotonic() - t1


def lab_cycle(scenario) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="nv-bench-lab-") as work:
        lab = Lab(scenario, Path(work))
        t0 = time.monotonic()
        lab.start()
        t1 = time.monotonic()
        lab.stop()
        t2 = time.monotonic()
        assert not lab_namespaces(lab.rid)
        return t1 - t0, t2 - t1


def main() -> int:
    missing = prerequisites()
    if missing:
        print(f"SKIP bench_lab_setup: needs {', '.join(missing)}")
        return 0
    s = load_scenario("russia-2022")
    n = len(Lab(s, Path(tempfile.gettempdir())).plan.namespaces)
    ups, downs, base_up, base_down = [], [], [], []
    for _ in range(REPEATS):
        u, d = lab_cycle(s)
        ups.append(u)
        downs.append(d)
        bu, bd = bare_namespaces(n)
        base_up.append(bu)
        base_down.append(bd)
    up, down, bu, bd = min(ups), min(downs), min(base_up), min(base_down)
    print(f"russia-2022: {n} namespaces, {len(s.isps)} ISPs, 2 OpenVPN clients, {len(s.isps)} censors "
          f"(best of {REPEATS}; load average {os.getloadavg()[0]:.1f})")
    print(f"RESULT lab_setup={up:.2f} s ratio={up / bu:.1f} baseline={bu:.2f} s "
          f"(bare 'ip netns add' x{n}) goal=<5 s {'OK' if up < 5 else 'MISSED'}")
    print(f"RESULT lab_teardown={down:.2f} s ratio={down / bd:.1f} baseline={bd:.2f} s "
          f"(bare 'ip netns del' x{n}) goal=<5 s {'OK' if down < 5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
