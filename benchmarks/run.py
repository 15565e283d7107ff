"""Run every benchmark (benchmarks/bench_*.py) and print its figures.

Each benchmark is a script that measures its target and a baseline in the same run (these
machines are noisy, so only ratios are meaningful) and prints lines of the form
`RESULT name=value unit ratio=R baseline=...`. Usage:

    .venv/bin/python benchmarks/run.py            # all (long ones in their short mode)
    .venv/bin/python benchmarks/run.py probe lab  # those whose file name contains a word
    .venv/bin/python benchmarks/run.py --full sustained  # long ones at full length (30 minutes)
    .venv/bin/python benchmarks/run.py --list           # each benchmark and the arguments it gets

Benchmarks that need root (lab) say so and are skipped when not root.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# benchmarks whose full run is long: the arguments of their short mode (unless --full). The
# analysis rounds' short mode is the configuration its docstring's figures were measured in
# (24 rounds of 500, bounds 30,000 / 40,000: ~3 minutes at load average 9-12; the default
# 80 x 1,000, five variants, several times that).
QUICK = {
    "bench_sustained.py": ["--quick"],
    "bench_analysis_rounds.py": ["--rounds", "24", "--per-round", "500", "--max-held", "30000",
                                 "--max-uids", "40000"],
}


def main(argv: list[str]) -> int:
    full = "--full" in argv
    listing = "--list" in argv
    argv = [a for a in argv if a not in ("--full", "--list")]
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(word in s.name for word in argv)]
    if not scripts:
        print("no benchmark matched", file=sys.stderr)
        return 2
    if listing:
        for script in scripts:
            extra = [] if full else QUICK.get(script.name, [])
            print(" ".join([script.name, *extra]))
        return 0
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        t0 = time.monotonic()
        extra = [] if full else QUICK.get(script.name, [])
        rc = subprocess.call([sys.executable, str(script), *extra], cwd=HERE.parent)
        print(f"== {script.name}: exit {rc} in {time.monotonic() - t0:.1f} s\n", flush=True)
        if rc != 0:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
