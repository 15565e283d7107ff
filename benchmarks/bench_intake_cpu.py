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
- http: other batches of the same corpus sent to the same app served by uvicorn with the tree's
  own protocol (collector/connections.py guarded_protocol: h11 before, httptools since) over a
  loopback socket: the server's CPU (this process's less the sending thread's), HTTP parsing
  included, as the web process pays it;
- refused: the same batches while the lag gate refuses them (the analysis made to look 99 s
  behind): the 503 and the drained body, which the web pays for every batch it turns away (3
  of 4 in the 30-minute sustained run);
- refused_expect: the same refusal of a client that sends `Expect: 100-continue` (agent/expect.py):
  its headers alone, the 503 before any body, the connection closed by the server (so each such
  batch also pays a new connection); its ratio to `refused` is what Expect saves the web;
- baseline: msgspec's untyped JSON decode of the same lines (the floor of any path that reads them).

With --against REV (default: BEFORE, the last revision before issue #13's intake work), the same
measurement also runs on REV's src/ (extracted with `git archive`), each tree in its own process,
alternating, ROUNDS times: the ratio old/new is the CPU saved. Loopback only: no network at all.

    .venv/bin/python benchmarks/bench_intake_cpu.py                  # work tree against BEFORE
    .venv/bin/python benchmarks/bench_intake_cpu.py --against HEAD --rounds 5   # an uncommitted change
    .venv/bin/python benchmarks/bench_intake_cpu.py --paths judge --against 846ffea   # the worker alone

Measured 2026-12-06 (2 cores shared, load average 1.3-1.5), against BEFORE, 2,000 measurements
of 17.9 KB, the trees in turn batch by batch: web 241 -> 202 and 218 -> 182 us (1.19x both
runs); judge worker 341 -> 320 and 307 -> 312 us (1.06x, 0.98x: no change it can resolve).
Each tree in a separate process run after the other instead gave 0.98-1.38x for the same code:
only the batch-by-batch alternation measures a 10-20% change on a shared machine.
Then against fbe1984 (before the literal search, the coroutine 503 handler, httptools and the
submit fast path), two runs, load average 4.6: web 243 -> 209 and 250 -> 200 us (1.16x,
1.25x), http 210 -> 197 and 300 -> 267 (1.06x, 1.12x), refused 26 -> 11 and 32 -> 15 (2.33x,
2.10x), judge worker 0.98x, 0.99x.
Then the judge worker alone against 846ffea (`--paths judge`; zstd level 1 in one call per batch,
leaner observation rows), load average 5-8: OONI corpus 428 -> 331, 288 -> 251, 346 -> 301 us
(1.15-1.29x), `--corpus lab` (our probe's 47.5 KB service measurements) 1,162 -> 972 and 926 -> 781
us (1.19-1.20x).
docs/benchmarks.md says what went and what is left.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import socket
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
PATHS = ("web", "http", "refused", "refused_expect", "judge")  # what is measured, each in µs of CPU per measurement


def _lab_corpus() -> list[dict]:
    """Our own probe's service measurements (~45 KB: ~130 network events, throughput samples),
    as the lab recorded them (tests/data/lab/*/measurements.jsonl.zst): what a fleet of
    `netvigil agent` sends, where the OONI corpus is mostly web_connectivity."""
    import zstandard

    items = []
    for path in sorted((REPO / "tests" / "data" / "lab").glob("*/measurements.jsonl.zst")):
        with path.open("rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
        for line in data.splitlines():
            if line.strip():
                m = json.loads(line)
                m.pop("measurement_uid", None)
                items.append(m)
    return items


CORPUS = os.environ.get("NV_BENCH_CORPUS", "ooni")  # --corpus, handed to the children


def _lines(n: int, ago: float = 3600) -> list[bytes]:
    """N distinct corpus measurements as a probe sends them (compact JSON, stamped AGO seconds
    before now, one second apart)."""
    sys.path.insert(0, str(HERE))
    import bench_collector_ingest as ingest

    corpus = _lab_corpus() if CORPUS == "lab" else ingest.corpus()
    now = time.time() + 3600 - ago
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


class _Served:
    """An app of the tree served by uvicorn with the tree's guarded protocol on a loopback port,
    in a thread of this process; batches sent from this thread on one kept-alive socket."""

    def __init__(self, tmp: Path, bodies: list[bytes]):
        import threading

        import uvicorn

        from netvigil.collector.connections import ConnectionLimits, guarded_protocol
        from netvigil.collector.fleet import FleetSettings
        from netvigil.observatory.app import create_app

        self.app = create_app(tmp, analysis=False, fsync=False, rate_per_second=1e9, rate_burst=1e9,
                              max_analysis_lag=3.0,
                              extra={"fleet": FleetSettings(network_factor=1.0, asn_factor=1.0, enrol_per_hour=1e9)})
        nv = self.app.state.nv
        self.lagging = False
        # the lag gate as when the analysis falls behind: on only while `lagging`
        nv.collector.analysis_lag = lambda checkpoint: 99.0 if self.lagging else 0.0
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        limits = ConnectionLimits()
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error", access_log=False,
                                http=guarded_protocol(limits), limit_concurrency=limits.max_connections,
                                timeout_keep_alive=3600)  # (idle while the other paths are measured)
        self.server = uvicorn.Server(config)
        threading.Thread(target=self.server.run, daemon=True).start()
        for _ in range(600):  # bounded: 60 s
            if self.server.started:
                break
            time.sleep(0.1)
        else:
            raise SystemExit("uvicorn did not start")
        nv.pump.error = None  # (analysis=False sets it, and the gate lets everyone by while it is set)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        status, data = self._exchange(self._request("/api/v1/probes/enrol", b"{}", "application/json", ""))
        if status != 200:
            raise SystemExit(f"enrolment over HTTP: {status} {data[:200]!r}")
        auth = json.loads(data)["authorization"]
        self.requests = [self._request("/api/v1/submit", body, "application/x-ndjson", auth) for body in bodies]
        self.port = port
        self.expect_heads = [r[:r.index(b"\r\n\r\n") + 2] + b"expect: 100-continue\r\n\r\n" for r in self.requests]

    @staticmethod
    def _request(path: str, body: bytes, kind: str, auth: str) -> bytes:
        head = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {kind}\r\n"
                f"content-length: {len(body)}\r\n" + (f"authorization: {auth}\r\n" if auth else "") + "\r\n")
        return head.encode() + body

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit(f"the server closed the connection: {data[:200]!r}")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += self.sock.recv(65536)
        return int(head.split()[1]), body

    def send_expect(self, i: int) -> float:
        """The server's CPU seconds to refuse request I sent with Expect: a new connection, the
        headers alone, the 503 read (the server closes: a tree without the close gets ours)."""
        self.lagging = True
        t, mine = time.process_time(), time.thread_time()
        keep, self.sock = self.sock, socket.create_connection(("127.0.0.1", self.port), timeout=60)
        try:
            status, data = self._exchange(self.expect_heads[i])
        finally:
            self.sock.close()
            self.sock = keep
        used = (time.process_time() - t) - (time.thread_time() - mine)
        if status != 503:
            raise SystemExit(f"submit over HTTP with Expect (lagging): {status} {data[:300]!r}")
        return used

    def send(self, i: int, lagging: bool) -> float:
        """The server's CPU seconds for request I (this process's CPU less this thread's)."""
        self.lagging = lagging
        t, mine = time.process_time(), time.thread_time()
        status, data = self._exchange(self.requests[i])
        used = (time.process_time() - t) - (time.thread_time() - mine)
        if status != (503 if lagging else 200):
            raise SystemExit(f"submit over HTTP{' (lagging)' if lagging else ''}: {status} {data[:300]!r}")
        return used


class _Child:
    """One tree's paths in this process (whatever `netvigil` is first on sys.path), a batch per
    call: the parent alternates the trees batch by batch, so a busy machine's load falls on both."""

    def __init__(self, n: int, tmp: Path, served: bool = True):
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
        if served:  # (not when only the judge worker is measured: no server to start)
            (tmp / "served").mkdir()
            other = _lines(n, ago=7200)  # not the web path's measurements: each is stored once
            self.served = _Served(tmp / "served", [b"\n".join(other[i:i + BATCH]) + b"\n" for i in range(0, n, BATCH)])

    def http(self, i: int) -> float:
        """The server's CPU seconds to take batch I over a socket (HTTP parsing included)."""
        return self.served.send(i, lagging=False)

    def refused(self, i: int) -> float:
        """The server's CPU seconds to refuse batch I (lag gate, 503) and drain its body."""
        return self.served.send(i, lagging=True)

    def refused_expect(self, i: int) -> float:
        """The server's CPU seconds to refuse batch I sent with Expect: 100-continue (no body)."""
        return self.served.send_expect(i)

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


def child(n: int, served: bool = True) -> None:
    """Answers the parent's commands ("web I", "http I", "refused I", "refused_expect I", "log", "judge K",
    "decode K")
    with CPU seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        c = _Child(n, Path(tmp), served)
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

    def __init__(self, src: Path, n: int, paths: tuple[str, ...] = PATHS):
        self.src = src
        self.proc = subprocess.Popen([sys.executable, __file__, "--child", "--n", str(n), "--paths", ",".join(paths)],
                                     cwd=REPO,
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


def _measure(trees: dict[str, Path], n: int, paths: tuple[str, ...] = PATHS) -> dict[str, dict[str, float]]:
    """µs of CPU per measurement by tree and path; batch by batch, the trees in turn (each
    batch's first tree alternating), the first batch of each path a warm-up. The web path
    always runs (it writes the log the judge worker reads), measured or not."""
    procs = {name: _Tree(src, n, paths) for name, src in trees.items()}
    total: dict[str, dict[str, float]] = {name: dict.fromkeys(PATHS + ("decode",), 0.0) for name in trees}
    order = list(procs)
    batches = n // BATCH
    try:
        for what in ("web", "http", "refused", "refused_expect", "log", "judge", "decode"):
            if what not in paths + ("web", "log", "decode"):
                continue
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
    ap.add_argument("--paths", default=",".join(PATHS), metavar="P,P",
                    help=f"what to measure, of {','.join(PATHS)} (default all; 'judge' alone starts no server)")
    ap.add_argument("--corpus", choices=("ooni", "lab"), default=CORPUS,
                    help="ooni: the OONI corpus of bench_collector_ingest (default); lab: our probe's "
                         "service measurements recorded in the lab (tests/data/lab)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.n < 2 * BATCH or args.rounds < 1:
        ap.error(f"--n must be at least {2 * BATCH} and --rounds at least 1")
    paths = tuple(p for p in PATHS if p in args.paths.split(","))
    if not paths or set(args.paths.split(",")) - set(PATHS):
        ap.error(f"--paths takes some of {','.join(PATHS)}, comma-separated: got {args.paths!r}")
    os.environ["NV_BENCH_CORPUS"] = args.corpus
    if args.child:
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(REPO / "src")))
        child(args.n, served=bool({"http", "refused", "refused_expect"} & set(paths)))
        return 0
    trees = {"new": REPO / "src"}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            trees["old"] = _tree(args.against, Path(tmp))
        runs = [_measure(trees, args.n, paths) for _ in range(args.rounds)]
    # per tree and path: the least of the rounds (CPU time on a shared machine only grows with load)
    med = {name: {k: min(r[name][k] for r in runs) for k in runs[0][name]} for name in trees}
    new = med["new"]
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; {args.n} {args.corpus} measurements of "
          f"{new['bytes'] / 1000:.1f} KB, the trees in turn batch by batch, least of {args.rounds} rounds")
    for what in paths:
        line = (f"RESULT intake_cpu_{what}={new[what]:.0f} us/measurement "
                f"({new[what] / new['decode']:.2f}x a JSON decode of the line, {new['decode']:.0f} us)")
        if "old" in med:
            old = med["old"]
            line += (f" old({args.against})={old[what]:.0f} us ({old[what] / old['decode']:.2f}x its decode) "
                     f"ratio_old/new={old[what] / new[what]:.2f}")
        print(line)
    if {"refused", "refused_expect"} <= set(paths):
        print(f"RESULT intake_cpu_refused_over_refused_expect={new['refused'] / new['refused_expect']:.2f}x "
              f"(the web's CPU for a batch it turns away: body sent and drained, against Expect: headers alone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
