"""Verdict throughput on OONI web_connectivity measurements vs the I/O floor.

The floor is what any pipeline must do: read the JSONL file and json.loads every line (as
docs/design.md section 12 measured OONI's pipeline against: 12.7-15.7x slower than that floor).
Ours: read + validate (msgspec) + observations + verdicts, one process. Goal: within 3x.
Also: peak memory when the input grows 10x (streaming: it must stay about flat).

Input: every real and QA web_connectivity measurement in tests/data/third_party and tests/data/ooni, repeated to N lines.
Prints `RESULT name=value unit ratio=R baseline=...` lines.

`--against DIR`: only the verdicts, this tree's against another tree's src/ (PYTHONPATH; e.g.
`git archive REV src | tar -x -C /tmp/old`, then DIR=/tmp/old/src), each in a fresh process,
in alternating turns beside the floor (`--rounds N`, 3 by default), wall and CPU time: a
refactor's cost on a shared machine.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "third_party"
N = 6000


def sources() -> list[bytes]:
    out = []
    for p in sorted((DATA / "ooni-probe-cli-minipipeline").rglob("measurement.json")):
        out.append(json.dumps(json.loads(p.read_text())).encode())
    for p in sorted((REPO / "tests" / "data" / "ooni" / "fastpath").glob("*.json")):
        try:
            m = json.loads(p.read_text())
        except ValueError:
            continue
        if isinstance(m, dict) and m.get("test_name") == "web_connectivity" and m.get("measurement_start_time"):
            out.append(json.dumps(m).encode())
    for line in gzip.decompress((DATA / "ooni-explorer-fixtures" / "raw_measurements.jsonl.gz").read_bytes()).splitlines():
        m = json.loads(line)
        if m.get("test_name") == "web_connectivity":
            out.append(line)
    return out


def write_input(path: Path, n: int) -> int:
    src = sources()
    with path.open("wb") as fh:
        for i in range(n):
            fh.write(src[i % len(src)] + b"\n")
    return len(src)


def floor(path: Path) -> float:
    t = time.perf_counter()
    with path.open("rb") as fh:
        for line in fh:
            json.loads(line)
    return time.perf_counter() - t


def ours(path: Path) -> tuple[float, int]:
    try:
        from netvigil.analysis.verdicts.engine import verdicts
    except ImportError:  # a tree from before the analysis package split (--against)
        from netvigil.analysis.verdicts import verdicts
    from netvigil.ingest.ooni import read_measurements

    t = time.perf_counter()
    n = sum(1 for _ in verdicts(read_measurements([path])))
    return time.perf_counter() - t, n


def fingerprint_scan(path: Path) -> tuple[float, float, int]:
    """Block-page fingerprints on every distinct HTTP body of the input: the one-pass matcher
    (RuleSet.match_http) against the plain scan it replaced (every fingerprint in turn)."""
    from netvigil.analysis.verdicts.observations import observe
    from netvigil.analysis.rules import load_rules
    from netvigil.ingest.ooni import read_measurements

    rules = load_rules()
    bodies = list({o.body: None for m in read_measurements([path]) for o in observe(m.test_keys, rules)
                   if o.step == "http" and o.body}) * 3
    rules.match_http("warm-up", {})

    def plain(body: str) -> list:
        return [fp for fp in rules.http_body if fp.matches(body)]

    def one_pass(body: str) -> list:
        return rules.match_http(body, {})

    times = {}
    for name, fn in (("plain", plain), ("one_pass", one_pass), ("plain", plain), ("one_pass", one_pass)):
        t = time.perf_counter()
        for b in bodies:  # consecutive bodies differ: the matcher's last-body memo never answers
            fn(b)
        times[name] = min(times.get(name, 1e9), time.perf_counter() - t)
    return times["plain"], times["one_pass"], len(bodies)


def peak_rss(path: Path) -> int:
    code = ("import resource,sys;from netvigil.analysis.verdicts.engine import verdicts;"
            "from netvigil.ingest.ooni import read_measurements;"
            "n=sum(1 for _ in verdicts(read_measurements([sys.argv[1]])));"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


OONIDATA_PY = Path(os.environ.get("OONIDATA_PYTHON", "/tmp/oonivenv/bin/python"))
OONIDATA_CODE = """
import sys, time, orjson
from oonidata.dataclient import load_measurement
t = time.perf_counter(); n = 0
with open(sys.argv[1], 'rb') as fh:
    for line in fh:
        try:
            load_measurement(orjson.loads(line))
        except Exception:  # a few fixtures (test_keys null) are rejected by its models
            pass
        n += 1
print(n / (time.perf_counter() - t))
"""


def oonidata_rate(path: Path) -> float | None:
    """PyPI oonidata (if installed in a throwaway venv): parse into its typed models only; its
    observation + analysis transforms live in oonipipeline, which is not on PyPI."""
    if not OONIDATA_PY.exists():
        return None
    out = subprocess.run([str(OONIDATA_PY), "-c", OONIDATA_CODE, str(path)], capture_output=True, text=True)
    return float(out.stdout.strip()) if out.returncode == 0 else None


def ours_in(src: str | None, path: Path) -> tuple[float, float, int]:
    """ours() in a fresh process (after a warm-up run) on `src`, a tree's src/ (None: this
    tree's): wall and CPU seconds and verdicts."""
    env = dict(os.environ, PYTHONPATH=str(Path(src).resolve())) if src else None
    out = subprocess.run([sys.executable, __file__, "--one", str(path)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"--against {src}: {out.stderr.strip().splitlines()[-1:]}")
    wall, cpu, n = out.stdout.split()
    return float(wall), float(cpu), int(n)


def one_run(path: Path) -> int:
    ours(path)
    cpu = time.process_time()
    wall, n = ours(path)
    print(wall, time.process_time() - cpu, n)
    return 0


def against(other: str, rounds: int = 3) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wc.jsonl"
        write_input(path, N)
        runs: dict[str, list] = {"this": [], "other": []}
        floors = []
        for r in range(rounds):
            floors.append(floor(path))
            for name in ("this", "other") if r % 2 == 0 else ("other", "this"):
                runs[name].append(ours_in(None if name == "this" else other, path))
        f = min(floors)
        tw, tc, tn = (min(x[i] for x in runs["this"]) for i in range(3))
        ow, oc, on = (min(x[i] for x in runs["other"]) for i in range(3))
        if tn != on:
            print(f"verdict counts differ: {tn} here, {on} with {other}")
        print(f"{rounds} rounds, turns alternated; load average {os.getloadavg()[0]:.1f}; floor {f:.2f} s")
        for name, rs in runs.items():
            print(f"  {name}: " + ", ".join(f"{w:.2f} s ({c:.2f} CPU)" for w, c, _ in rs))
        print(f"RESULT verdicts_ratio_this_tree={tw / f:.2f} ratio={tw / f:.2f} baseline=json.loads floor")
        print(f"RESULT verdicts_ratio_other_tree={ow / f:.2f} ratio={ow / f:.2f} baseline=json.loads floor ({other})")
        print(f"RESULT verdicts_wall_this_vs_other={tw:.2f} s ratio={ow / tw:.2f} baseline={ow:.2f} s ({other}; above 1: this tree is faster)")
        print(f"RESULT verdicts_cpu_this_vs_other={tc:.2f} s ratio={oc / tc:.2f} baseline={oc:.2f} s ({other})")
    return 0


def main() -> int:
    if "--one" in sys.argv:
        return one_run(Path(sys.argv[sys.argv.index("--one") + 1]))
    if "--against" in sys.argv:
        rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
        return against(sys.argv[sys.argv.index("--against") + 1], rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wc.jsonl"
        distinct = write_input(path, N)
        size = path.stat().st_size / 1e6
        ours(path)  # warm-up: imports, rule loading
        fs, os_ = [], []
        for _ in range(3):  # interleaved, so a burst of load on this shared machine hits both
            fs.append(floor(path))
            os_.append(ours(path))
        f = min(fs)
        o, n = min(os_)
        print(f"input: {N} web_connectivity measurements ({distinct} distinct, {size:.1f} MB)")
        print(f"RESULT verdicts_per_second={n / o:.0f} /s ratio={o / f:.2f} baseline=json.loads floor {N / f:.0f} /s (goal: ratio <= 3)")
        od = oonidata_rate(path)
        if od is not None:
            print(f"RESULT oonidata_parse_only_per_second={od:.0f} /s ratio={(n / o) / od:.2f} baseline=netvigil verdicts/s "
                  f"(oonidata 0.3.0 load_measurement: parsing alone, no observations or analysis)")
        else:
            print("oonidata not installed (python -m venv /tmp/oonivenv && /tmp/oonivenv/bin/pip install oonidata): skipped")
        plain, one, nb = fingerprint_scan(path)
        print(f"RESULT fingerprint_match_per_body={one / nb * 1e6:.1f} us ratio={plain / one:.1f} "
              f"baseline=plain scan of every fingerprint {plain / nb * 1e6:.0f} us (same {nb} bodies, same results)")
        big = Path(tmp) / "wc10.jsonl"
        write_input(big, N * 10)
        r1, r10 = peak_rss(path), peak_rss(big)
        print(f"RESULT peak_rss_10x_input={r10 / 1024:.0f} MB ratio={r10 / r1:.2f} baseline=peak_rss_1x {r1 / 1024:.0f} MB "
              f"(streaming: ratio should stay near 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
