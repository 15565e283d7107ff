"""CPU per measurement of the web process's intake and of the judge worker, old code against new in one run.

Why: the observatory's three processes cost ~1.1-1.5 ms of CPU per 18 KB measurement (issue #13);
bench_sustained measures them end to end, but on a shared machine its figures move by 30% from run
to run. This one drives the same code paths in-process, with nothing else in between:
- web: a JSONL batch (50 measurements of the real OONI corpus of bench_collector_ingest, stamped
  now, claimed by the probe's own network) sent to the app's POST /api/v1/submit as an enrolled
  probe, straight through its ASGI interface (no socket, no h11: the route, quotas, the
  collector's decode/validate/scrub/uid, provenance and the log commit, fsync off);
- judge worker: `judge_batch` over the log lines the web wrote (decode, checks, judge, archive
  frames), as observatory/judge_worker.py runs it;
- baseline: msgspec's untyped JSON decode of the same lines (the floor of any path that reads them).

With --against REV (default: BEFORE, the last revision before issue #13's intake work), the same
measurement also runs on REV's src/ (extracted with `git archive`), each tree in its own process,
alternating, ROUNDS times: the ratio old/new is the CPU saved. Loopback only: no network at all.

    .venv/bin/python benchmarks/bench_intake_cpu.py                  # work tree against BEFORE
    .venv/bin/python benchmarks/bench_intake_cpu.py --against HEAD --rounds 5   # an uncommitted change

Measured 2026-12-06 (2 cores shared, load average 2-3), against BEFORE, 2,000 measurements of
17.9 KB: web 219-234 -> 168-170 us (1.31-1.38x); judge worker 268-302 -> 254-263 us (within the
noise). docs/benchmarks.md says what went and what is left.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BATCH = 50
BEFORE = "2c885d1"  # the revision before issue #13's intake and judge worker work (the default --against)


def _lines(n: int) -> list[bytes]:
    """N distinct corpus measurements as a probe sends them (compact JSON, stamped now)."""
    sys.path.insert(0, str(HERE))
    import bench_collector_ingest as ingest

    corpus = ingest.corpus()
    now = time.time()
    out = []
    for i in range(n):
        m = dict(corpus[i % len(corpus)],
                 measurement_start_time=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - 3600 + i)),
                 probe_asn=f"AS{4_100_000_000 + i % 7}", probe_cc="RU", probe_network_name="bench-net",
                 report_id="bench00001")
        out.append(json.dumps(m, separators=(",", ":")).encode())
    return out


class _Asgi:
    """Calls an ASGI app in-process: one request, the body in 64 KB chunks as uvicorn hands it."""

    def __init__(self, app):
        self.app = app

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]
        sent = {"status": 0, "body": b""}

        async def receive():
            if chunks:
                chunk = chunks.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
            return {"type": "http.disconnect"}

        async def send(msg):
            if msg["type"] == "http.response.start":
                sent["status"] = msg["status"]
            elif msg["type"] == "http.response.body":
                sent["body"] += msg.get("body", b"")

        hdrs = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        hdrs.append((b"content-length", str(len(body)).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "headers": hdrs, "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}
        await self.app(scope, receive, send)
        return sent["status"], sent["body"]


def child(n: int) -> dict:
    """One measurement in this process, on whatever `netvigil` is first on sys.path."""
    import msgspec

    from netvigil.analysis.rules import load_rules
    from netvigil.analysis.verdicts.engine import Judge
    from netvigil.collector.fleet import FleetSettings
    from netvigil.observatory.app import create_app
    from netvigil.observatory.judge_worker import Request, judge_batch
    from netvigil.observatory.pump_process import GC_THRESHOLD

    lines = _lines(n)
    bodies = [b"\n".join(lines[i:i + BATCH]) + b"\n" for i in range(0, n, BATCH)]
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Path(tmp), analysis=False, fsync=False, rate_per_second=1e9, rate_burst=1e9,
                         extra={"fleet": FleetSettings(network_factor=1.0, asn_factor=1.0, enrol_per_hour=1e9)})
        client = _Asgi(app)

        async def web() -> float:
            status, data = await client.post("/api/v1/probes/enrol", b"{}", {"content-type": "application/json"})
            if status != 200:
                raise SystemExit(f"enrolment: HTTP {status} {data[:200]!r}")
            auth = {"authorization": json.loads(data)["authorization"], "content-type": "application/x-ndjson"}
            await client.post("/api/v1/submit", bodies[0], auth)  # warm: first-use imports and caches
            t = time.process_time()
            for body in bodies[1:]:
                status, data = await client.post("/api/v1/submit", body, auth)
                if status != 200:
                    raise SystemExit(f"submit: HTTP {status} {data[:300]!r}")
            return time.process_time() - t

        out["web"] = asyncio.run(web()) / (n - BATCH) * 1e6
        nv = app.state.nv
        log_dir = Path(tmp) / "log"
        end = nv.collector.log.end()
        nv.collector.close()
        stored = [line for _, line in nv.collector.log.scan((0, 0), stop=end)]
        if len(stored) != n:
            raise SystemExit(f"the log holds {len(stored)} lines, {n} were sent")
        gc.set_threshold(*GC_THRESHOLD)  # as the worker runs (judge_worker.main)
        judge = Judge(load_rules())
        gc.freeze()
        judge_batch(judge, log_dir, Request((0, 0), end, BATCH))  # warm
        t = time.process_time()
        batch = judge_batch(judge, log_dir, Request((0, 0), end, n))
        out["judge"] = (time.process_time() - t) / n * 1e6
        if len(batch.judged) != n or batch.failed:
            raise SystemExit(f"judge worker: {len(batch.judged)} judged, {len(batch.failed)} set aside of {n}")
        dec = msgspec.json.Decoder()
        passes = []
        for _ in range(3):  # the least of three: the floor, as little moved by a busy machine as can be
            t = time.process_time()
            for line in stored:
                dec.decode(line)
            passes.append(time.process_time() - t)
        out["decode"] = min(passes) / n * 1e6
        out["bytes"] = sum(map(len, stored)) / n
    return out


def _tree(rev: str, into: Path) -> Path:
    """REV's src/ extracted under INTO (git archive: the repository is not touched)."""
    tar = into / "src.tar"
    with open(tar, "wb") as fh:
        r = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "src"], stdout=fh,
                           stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"--against {rev}: git archive failed ({r.stderr.strip()[:200]}); "
                         "give a revision of this checkout, or --against '' to measure the work tree alone")
    with tarfile.open(tar) as tf:
        tf.extractall(into, filter="data")
    return into / "src"


def _run(src: Path, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    r = subprocess.run([sys.executable, __file__, "--child", "--n", str(n)], env=env, capture_output=True,
                       text=True, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"the measurement on {src} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: bench_intake_cpu.py --against HEAD --rounds 3 --n 2000")
    ap.add_argument("--n", type=int, default=2000, help="measurements per round (default 2000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each tree, alternating (default 3)")
    ap.add_argument("--against", default=BEFORE, metavar="REV",
                    help=f"the old code: a git revision whose src/ is measured too (default {BEFORE}, before "
                         "issue #13's intake work; HEAD for an uncommitted change; '' for none)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.n < 2 * BATCH or args.rounds < 1:
        ap.error(f"--n must be at least {2 * BATCH} and --rounds at least 1")
    if args.child:
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(REPO / "src")))
        print(json.dumps(child(args.n)))
        return 0
    trees = {"new": REPO / "src"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            trees["old"] = _tree(args.against, Path(tmp))
        runs: dict[str, list[dict]] = {k: [] for k in trees}
        for _ in range(args.rounds):
            for name, src in trees.items():
                runs[name].append(_run(src, args.n))
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    new = med["new"]
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; {args.n} measurements of "
          f"{new['bytes'] / 1000:.1f} KB, median of {args.rounds} rounds")
    for what in ("web", "judge"):
        line = (f"RESULT intake_cpu_{what}={new[what]:.0f} us/measurement "
                f"({new[what] / new['decode']:.2f}x a JSON decode of the line, {new['decode']:.0f} us)")
        if "old" in med:
            old = med["old"]
            line += (f" old({args.against})={old[what]:.0f} us ({old[what] / old['decode']:.2f}x its decode) "
                     f"ratio_old/new={old[what] / new[what]:.2f} (normalised by decode: "
                     f"{(old[what] / old['decode']) / (new[what] / new['decode']):.2f})")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
