"""CPU per measurement of the web process's intake and of the judge worker, old code against new in one run.

Why: the observatory's three processes cost ~1.1-1.5 ms of CPU per 18 KB measurement (issue #13);
bench_sustained measures them end to end, but on a shared machine its figures move by 30% from run
to run. This one drives the same code paths in-process, with nothing else in between:
- web: a JSONL batch (50 measurements of the real OONI corpus of bench_collector_ingest, stamped
  now, claimed by the probe's own network) sent to the app's POST /api/v1/submit as an enrolled
  probe from a documentation address (CLIENT), straight through its ASGI interface (no socket,
  no h11: the route, quotas, the collector's decode/validate/scrub/uid, provenance and the log
  commit, fsync off);
- judge worker: `judge_batch` over the log lines the web wrote (decode, checks, judge, archive
  frames), as observatory/judge_worker.py runs it;
- baseline: msgspec's untyped JSON decode of the same lines (the floor of any path that reads them).

With --against REV (default: BEFORE, the last revision before issue #13's intake work), the same
measurement also runs on REV's src/ (extracted with `git archive`), each tree in its own process,
alternating, ROUNDS times: the ratio old/new is the CPU saved. Loopback only: no network at all.

    .venv/bin/python benchmarks/bench_intake_cpu.py                  # work tree against BEFORE
    .venv/bin/python benchmarks/bench_intake_cpu.py --against HEAD --rounds 5   # an uncommitted change

Measured 2026-12-06 (2 cores shared, load average 1.3-1.5), against BEFORE, 2,000 measurements
of 17.9 KB, the trees in turn batch by batch: web 241 -> 202 and 218 -> 182 us (1.19x both
runs); judge worker 341 -> 320 and 307 -> 312 us (1.06x, 0.98x: no change it can resolve).
Each tree in a separate process run after the other instead gave 0.98-1.38x for the same code:
only the batch-by-batch alternation measures a 10-20% change on a shared machine.
docs/benchmarks.md says what went and what is left.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BATCH = 50
# the submitter's address as the route sees it (a documentation address, RFC 5737: only a string in
# the ASGI scope, nothing is sent anywhere): not loopback, so the scrub looks for it in every line
# and the claim is checked against the IP-to-ASN table, as for a real probe
CLIENT = "203.0.113.7"
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
                 "root_path": "", "headers": hdrs, "client": (CLIENT, 40000), "server": ("127.0.0.1", 8000)}
        await self.app(scope, receive, send)
        return sent["status"], sent["body"]


class _Child:
    """One tree's paths in this process (whatever `netvigil` is first on sys.path), a batch per
    call: the parent alternates the trees batch by batch, so a busy machine's load falls on both."""

    def __init__(self, n: int, tmp: Path):
        from netvigil.collector.fleet import FleetSettings
        from netvigil.observatory.app import create_app

        lines = _lines(n)
        self.n = n
        self.bodies = [b"\n".join(lines[i:i + BATCH]) + b"\n" for i in range(0, n, BATCH)]
        self.tmp = tmp
        self.app = create_app(tmp, analysis=False, fsync=False, rate_per_second=1e9, rate_burst=1e9,
                              extra={"fleet": FleetSettings(network_factor=1.0, asn_factor=1.0, enrol_per_hour=1e9)})
        self.client = _Asgi(self.app)
        self.loop = asyncio.new_event_loop()
        status, data = self.loop.run_until_complete(
            self.client.post("/api/v1/probes/enrol", b"{}", {"content-type": "application/json"}))
        if status != 200:
            raise SystemExit(f"enrolment: HTTP {status} {data[:200]!r}")
        self.auth = {"authorization": json.loads(data)["authorization"], "content-type": "application/x-ndjson"}

    def web(self, i: int) -> float:
        """CPU seconds to take batch I through POST /api/v1/submit."""
        t = time.process_time()
        status, data = self.loop.run_until_complete(self.client.post("/api/v1/submit", self.bodies[i], self.auth))
        used = time.process_time() - t
        if status != 200:
            raise SystemExit(f"submit: HTTP {status} {data[:300]!r}")
        return used

    def close_log(self) -> None:
        """The web part done: the log's lines, batch by batch, for the worker's part."""
        import msgspec

        from netvigil.analysis.rules import load_rules
        from netvigil.analysis.verdicts.engine import Judge
        from netvigil.observatory.pump_process import GC_THRESHOLD

        nv = self.app.state.nv
        end = nv.collector.log.end()
        nv.collector.close()
        scanned = list(nv.collector.log.scan((0, 0), stop=end))
        if len(scanned) != self.n:
            raise SystemExit(f"the log holds {len(scanned)} lines, {self.n} were sent")
        self.lines = [line for _, line in scanned]
        self.starts = [(p.segment, p.offset) for p, _ in scanned[::BATCH]] + [end]
        gc.set_threshold(*GC_THRESHOLD)  # as the worker runs (judge_worker.main)
        self.judge_ = Judge(load_rules())
        gc.freeze()
        self.decoder = msgspec.json.Decoder()
        self.bytes = sum(map(len, self.lines)) / self.n

    def judge(self, k: int) -> float:
        """CPU seconds of judge_batch over the log's batch K."""
        from netvigil.observatory.judge_worker import Request, judge_batch

        t = time.process_time()
        batch = judge_batch(self.judge_, self.tmp / "log", Request(self.starts[k], self.starts[k + 1], BATCH))
        used = time.process_time() - t
        if len(batch.judged) != BATCH or batch.failed:
            raise SystemExit(f"judge worker: {len(batch.judged)} judged, {len(batch.failed)} set aside of {BATCH}")
        return used

    def decode(self, k: int) -> float:
        """CPU seconds of msgspec's untyped decode of batch K's lines (the baseline)."""
        t = time.process_time()
        for line in self.lines[k * BATCH:(k + 1) * BATCH]:
            self.decoder.decode(line)
        return time.process_time() - t


def child(n: int) -> None:
    """Answers the parent's commands ("web I", "log", "judge K", "decode K") with CPU seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        c = _Child(n, Path(tmp))
        print("ready", flush=True)
        for command in sys.stdin:
            what, _, arg = command.strip().partition(" ")
            if what == "log":
                c.close_log()
                print(c.bytes, flush=True)
            else:
                print(getattr(c, what)(int(arg)), flush=True)


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


class _Tree:
    """A child process measuring one source tree."""

    def __init__(self, src: Path, n: int):
        self.src = src
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", "--n", str(n)], cwd=REPO,
                                     env={**os.environ, "PYTHONPATH": str(src)}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.ask("")  # "ready"

    def ask(self, command: str) -> float:
        if command:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer:
            self.proc.kill()  # our own child, by its handle
            raise SystemExit(f"the measurement on {self.src} failed:\n{self.proc.stderr.read()[-2000:]}")
        return 0.0 if answer == "ready" else float(answer)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _measure(trees: dict[str, Path], n: int) -> dict[str, dict[str, float]]:
    """µs of CPU per measurement by tree and path; batch by batch, the trees in turn (each
    batch's first tree alternating), the first batch of each path a warm-up."""
    procs = {name: _Tree(src, n) for name, src in trees.items()}
    total: dict[str, dict[str, float]] = {name: {"web": 0.0, "judge": 0.0, "decode": 0.0} for name in trees}
    order = list(procs)
    batches = n // BATCH
    try:
        for what in ("web", "log", "judge", "decode"):
            if what == "log":
                for name, t in procs.items():
                    total[name]["bytes"] = t.ask("log")
                continue
            for i in range(batches):
                for name in (order if i % 2 else order[::-1]):
                    used = procs[name].ask(f"{what} {i}")
                    if i:  # batch 0 warms each path up
                        total[name][what] += used
    finally:
        for t in procs.values():
            t.close()
    return {name: {k: (v / ((batches - 1) * BATCH) * 1e6 if k != "bytes" else v) for k, v in d.items()}
            for name, d in total.items()}


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
        child(args.n)
        return 0
    trees = {"new": REPO / "src"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            trees["old"] = _tree(args.against, Path(tmp))
        runs = [_measure(trees, args.n) for _ in range(args.rounds)]
    # per tree and path: the least of the rounds (CPU time on a shared machine only grows with load)
    med = {name: {k: min(r[name][k] for r in runs) for k in runs[0][name]} for name in trees}
    new = med["new"]
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; {args.n} measurements of "
          f"{new['bytes'] / 1000:.1f} KB, the trees in turn batch by batch, least of {args.rounds} rounds")
    for what in ("web", "judge"):
        line = (f"RESULT intake_cpu_{what}={new[what]:.0f} us/measurement "
                f"({new[what] / new['decode']:.2f}x a JSON decode of the line, {new['decode']:.0f} us)")
        if "old" in med:
            old = med["old"]
            line += (f" old({args.against})={old[what]:.0f} us ({old[what] / old['decode']:.2f}x its decode) "
                     f"ratio_old/new={old[what] / new[what]:.2f}")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
