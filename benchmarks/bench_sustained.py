"""Sustained load, not a burst (issue #13): the observatory under RATE measurements/s from
PROBES enrolled probe ids for MINUTES, with memory and arrival-to-status latency over time.

`netvigil serve` (analysis on, chdb) in its own process; PROBES probes enrol. The load: the
real OONI corpus of bench_collector_ingest, each line stamped with the current time (a live
fleet measures now, so every line falls inside the analysis' refresh window) and claimed by
its probe's own network (one ASN per probe, COUNTRIES countries), sent as each probe's JSONL
batches with its own credential from SENDERS keep-alive connections. Every second a marker
(one probe round of tests/data/lab/russia-2022, trusted token, on one of MARKER_NETWORKS
networks of the markers' own, in turn) is submitted; the time until /api/v1/status?asn=...
shows a measurement of its time is its arrival-to-status latency.

Baseline, same run: the same marker on the idle server before the load. Memory: the RSS of
the server's process tree (web process, analysis process, judge worker), sampled every
SAMPLE seconds; "start" is the end of the warm-up (the first WARMUP of the load), growth is
given per hour of load from there.

    .venv/bin/python benchmarks/bench_sustained.py                # 30 minutes (the issue's target)
    .venv/bin/python benchmarks/bench_sustained.py --minutes 5
    .venv/bin/python benchmarks/bench_sustained.py --quick        # 1 minute (benchmarks/run.py)

Prints RESULT lines: p50/max latency under load and the ratio to idle, accepted rate, RSS at
start and end per process and in all. Loopback only.

With --max-analysis-lag S (default 3; the server's option), untrusted batches get 503 while
the analysis is more than S seconds behind: the status stays seconds behind whatever rate the
machine sustains (counted as http_503; the generator does not resend them). The generator sends
each batch with `Expect: 100-continue` (agent/expect.py, as the project's clients do): a refused
batch's body is never sent nor read, and the server closes that connection (the sender opens a
new one). --no-expect sends bodies at once, as clients without Expect do.

Measured 2026-12-06 (2 cores shared with five other sessions, load average 5-12; details and
the per-stage costs in docs/benchmarks.md): 1 minute back to back, 5,000/s offered: gate off
p50 21.5 s and growing, 637/s accepted; gate on p50 4.57 s, 676/s. 5 minutes, gate on:
p50 4.30 s (flat by thirds), max 14.5 s, 622/s accepted. Load average 3.6, 1 minute: gate on
p50 2.82 s, 1,431/s accepted; gate off p50 10.66 s and growing, 1,863/s. Web RSS flat after its
warm-up (5 minutes at 539/s: 302 -> 320 MB), the
analysis grows until its bounds fill (~500,000 measurements). Not reached here: 5,000/s (the
three processes take ~1.1-1.5 ms of CPU per measurement).

The lead's run: .venv/bin/python benchmarks/bench_sustained.py --minutes 30
(2026-12-06, before the fix below: accepted fell from 658/s to ~0 after ~750 s, analysis CPU
2,394 us per measurement.) Found with bench_analysis_rounds.py and --profile DIR (the analysis'
rounds profiled minute by minute): each line committed since the last round was read from the
log before its provenance line, so it looked "late" every round, and every round regated every
incident, counted every status cell again from the whole held window and looked its voices up
in the store's `voices` table (FINAL, a cost that grows with the table). Fixed in
observatory/analyser.py (`_voices` reads the provenance file first).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import bench_collector_ingest as ingest  # noqa: E402
import bench_collector_latency as latency  # noqa: E402
from _server import free_port, start_serve  # noqa: E402

from netvigil.agent import expect  # noqa: E402
from netvigil.report.replay import load_run, rounds  # noqa: E402

TOKEN = ingest.TOKEN
COUNTRIES = ("RU", "IR", "CN", "TR", "BY", "KZ", "MM", "PK", "VE", "ET")
BATCH = 50  # measurements per probe batch
SENDERS = 8  # keep-alive connections of the load generator
SAMPLE = 10.0  # seconds between memory samples
MARKER_NETWORKS = 60  # the markers' networks, taken in turn (a marker a second: each every minute)


# ---- the server's process tree ------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def tree_rss(pid: int) -> dict[str, int]:
    """RSS in bytes of PID and its descendants, by role (web, analysis, judge, other)."""
    rss: dict[str, int] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        todo += _children(p)
        try:
            pages = int(Path(f"/proc/{p}/statm").read_text().split()[1])
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        role = ("web" if p == pid else "judge" if "judge_worker" in cmd else "other" if "resource_tracker" in cmd
                else "analysis" if "multiprocessing" in cmd else "other")
        rss[role] = rss.get(role, 0) + pages * os.sysconf("SC_PAGE_SIZE")
    return rss


def tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of PID and its descendants so far, by role (as tree_rss)."""
    cpu: dict[str, float] = {}
    todo = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        todo += _children(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        role = ("web" if p == pid else "judge" if "judge_worker" in cmd else "other" if "resource_tracker" in cmd
                else "analysis" if "multiprocessing" in cmd else "other")
        cpu[role] = cpu.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return cpu


def mb(n: int) -> str:
    return f"{n / (1 << 20):.0f} MB"


# ---- the load -----------------------------------------------------------------------------

_FIELDS = (b"@TIME@", b"@ASN@", b"@CC@", b"@NAME@", b"@REPORT@")


def _pieces(template: bytes) -> list:
    """TEMPLATE cut at its placeholders: bytes, then the index in _FIELDS of each placeholder."""
    out: list = []
    pos = 0
    while True:
        found = [(template.find(f, pos), k) for k, f in enumerate(_FIELDS)]
        found = [(i, k) for i, k in found if i >= 0]
        if not found:
            out.append(template[pos:])
            return out
        i, k = min(found)
        out += [template[pos:i], k]
        pos = i + len(_FIELDS[k])


class Fleet:
    """Enrolled probes and the lines they send: corpus templates cut at placeholders for the
    time and the claimed network, so a batch costs one join (the generator shares the server's
    cores: what it spends, the server does not get; its CPU per measurement is printed)."""

    def __init__(self, port: int, probes: int):
        self.auths = []
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(probes):
            c.request("POST", "/api/v1/probes/enrol", body=b"{}", headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                raise SystemExit(f"enrolment: HTTP {r.status} {data[:200]!r}")
            self.auths.append(json.loads(data)["authorization"])
        self.templates = []
        for m in ingest.corpus():
            m = dict(m, measurement_start_time="@TIME@", probe_asn="@ASN@", probe_cc="@CC@",
                     probe_network_name="@NAME@", report_id="@REPORT@")
            self.templates.append(_pieces(json.dumps(m, separators=(",", ":")).encode()))
        self.turn = [0] * probes

    def batch(self, k: int) -> bytes:
        """Probe k's next batch: BATCH distinct templates, stamped now."""
        values = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()).encode(), f"AS{4_100_000_000 + k}".encode(),
                  COUNTRIES[k % len(COUNTRIES)].encode(), f"bench-net-{k}".encode(), f"bench{k:05d}".encode())
        parts: list[bytes] = []
        first = self.turn[k]
        for i in range(BATCH):
            parts += [values[x] if type(x) is int else x for x in self.templates[(first + i) % len(self.templates)]]
            parts.append(b"\n")
        self.turn[k] = first + BATCH
        return b"".join(parts)


def load(port: int, fleet: Fleet, rate: float, seconds: float, counts: dict, with_expect: bool = True) -> None:
    """RATE measurements/s for SECONDS: each sender takes the next probe in turn and sends its
    batch when due (batches are spread evenly over time); WITH_EXPECT: Expect: 100-continue."""
    interval = BATCH / rate  # seconds between two batches, all senders together
    lock = threading.Lock()
    t0 = time.monotonic()
    state = {"next": 0}

    def sender() -> None:
        try:
            send()
        finally:
            with lock:
                counts["generator_cpu"] = counts.get("generator_cpu", 0.0) + time.thread_time()

    def send() -> None:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                n = state["next"]
                state["next"] += 1
            due = t0 + n * interval
            if due - t0 >= seconds or time.monotonic() - t0 >= seconds:
                return  # (a batch not sent in time is not sent: what was offered is what was due)
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -1.0:
                with lock:
                    counts["late"] = counts.get("late", 0) + BATCH  # the generator fell behind
                continue
            k = n % len(fleet.auths)
            body = fleet.batch(k)
            headers = {"Authorization": fleet.auths[k], "Content-Type": "application/x-ndjson"}
            try:
                if with_expect:
                    answer = expect.post(c, "/api/v1/submit", body, headers)
                    status = answer.status
                    if not answer.body_sent:
                        with lock:
                            counts["bodies_not_sent"] = counts.get("bodies_not_sent", 0) + 1
                else:
                    c.request("POST", "/api/v1/submit", body=body, headers=headers)
                    r = c.getresponse()
                    r.read()
                    status = r.status
            except (OSError, http.client.HTTPException):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                status = 0
            with lock:
                if status == 200:
                    counts["accepted"] += BATCH
                else:
                    counts[f"http_{status}"] = counts.get(f"http_{status}", 0) + 1

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# ---- markers ------------------------------------------------------------------------------

def _shows(port: int, asn: str, stamp: str) -> bool:
    """Whether ASN's status holds a measurement of STAMP or later (the marker's own)."""
    return any((r.get("last_measurement") or "").replace("T", " ").rstrip("Z")[:19] >= stamp
               for r in latency.status_rows(port, asn))


def markers(port: int, samples, seconds: float, first: int, stop: threading.Event | None = None) -> list[float]:
    """A marker each second for SECONDS; the latency of each (inf: never seen within 120 s).

    The markers take turns over MARKER_NETWORKS networks of their own, as a fleet's networks
    are a fixed set: a new network every second would grow the status grid (and the
    analysis' memory) with the length of the run, which no real fleet does. A marker is seen
    when its network's status holds a measurement of its time or later."""
    sent: dict[int, tuple[str, str, float]] = {}  # k -> (asn, stamp, monotonic time sent)
    seen: dict[int, float] = {}

    def look() -> None:
        for j, (asn, stamp, t_sub) in sent.items():
            if j not in seen and _shows(port, asn, stamp):
                seen[j] = time.monotonic() - t_sub

    t0 = time.monotonic()
    k = first
    while time.monotonic() - t0 < seconds and not (stop and stop.is_set()):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        asn = latency.submit_marker(port, samples, k, network=k % MARKER_NETWORKS)
        sent[k] = (asn, stamp, time.monotonic())
        k += 1
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            look()
            time.sleep(0.05)
    t_end = time.monotonic()
    while len(seen) < len(sent) and time.monotonic() - t_end < 120:
        look()
        time.sleep(0.1)
    return [seen.get(j, float("inf")) for j in sent]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: bench_sustained.py --minutes 5 --rate 5000 --probes 1000")
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the load (default 30)")
    ap.add_argument("--quick", action="store_true", help="1 minute of load (what benchmarks/run.py runs)")
    ap.add_argument("--rate", type=float, default=5000.0, help="measurements/s offered (default 5000)")
    ap.add_argument("--probes", type=int, default=1000, help="distinct enrolled probe ids (default 1000)")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of markers on the idle server (baseline)")
    ap.add_argument("--max-held", type=int, default=None,
                    help="the analysis' bound on held verdicts (NETVIGIL_MAX_HELD_VERDICTS; default the server's, "
                         "400,000; --quick: 20,000, so that one minute reaches it)")
    ap.add_argument("--max-uids", type=int, default=None,
                    help="the analysis' bound on held uids (NETVIGIL_MAX_HELD_UIDS; default the server's, 500,000)")
    ap.add_argument("--max-analysis-lag", type=float, default=3.0,
                    help="the server's --max-analysis-lag: untrusted submissions get 503 while the analysis is "
                         "more than this many seconds behind (default 3; 0: off, the backlog grows unbounded)")
    ap.add_argument("--no-expect", action="store_true",
                    help="send each batch's body at once (no Expect: 100-continue): a refused body is sent and "
                         "read, the connection kept (the default sends Expect, as agent/expect.py does)")
    ap.add_argument("--profile", metavar="DIR", default=None,
                    help="profile the analysis process's rounds into DIR, one cProfile file per minute and "
                         "CPU per measurement by minute in DIR/slices.tsv (NETVIGIL_PROFILE_ANALYSIS, "
                         "observatory/round_profile.py); off by default")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of load before memory's 'start' (default: a quarter of the load, at most 300)")
    args = ap.parse_args(argv)
    minutes = 1.0 if args.quick else args.minutes
    max_held = args.max_held or (20_000 if args.quick else None)
    if minutes <= 0 or args.rate <= 0 or args.probes < 1:
        ap.error("--minutes, --rate and --probes must be positive")
    seconds = minutes * 60
    warmup = args.warmup if args.warmup is not None else min(300.0, seconds / 4)

    first_round = next(rounds(load_run(HERE.parent / "tests" / "data" / "lab" / "russia-2022")))[1]
    samples = [m for m in first_round if m.probe_asn == first_round[0].probe_asn]
    with tempfile.TemporaryDirectory() as tmp:
        free = shutil.disk_usage(tmp).free
        need = 18_000 * args.rate * seconds  # the log keeps every accepted 18 KB line
        print(f"disk: {free / 1e9:.0f} GB free in {tmp}; the offered load would write up to {need / 1e9:.0f} GB "
              f"(only what is accepted is written)" + ("  WARNING: may fill the disk" if need > free else ""), flush=True)
        port = free_port()
        proc = start(os.path.join(tmp, "obs"), port, max_held, args.max_analysis_lag, args.max_uids,
                     profile=os.path.abspath(args.profile) if args.profile else None)
        try:
            fleet = Fleet(port, args.probes)
            idle = markers(port, samples, args.idle, first=0)
            rss_idle = tree_rss(proc.pid)
            counts: dict = {"accepted": 0}
            cpu_start = tree_cpu(proc.pid)
            loader = threading.Thread(target=load, args=(port, fleet, args.rate, seconds, counts, not args.no_expect),
                                      daemon=True)
            stop = threading.Event()
            lat: list[float] = []
            marker_thread = threading.Thread(
                target=lambda: lat.extend(markers(port, samples, seconds, first=1000, stop=stop)), daemon=True)
            t0 = time.monotonic()
            loader.start()
            marker_thread.start()
            memory: list[tuple[float, dict[str, int]]] = []
            while loader.is_alive():
                loader.join(SAMPLE)
                memory.append((time.monotonic() - t0, tree_rss(proc.pid)))
                el, r = memory[-1]
                print(f"  t={el:5.0f} s accepted={counts['accepted'] / el:.0f}/s rss=" +
                      " ".join(f"{k}:{mb(v)}" for k, v in sorted(r.items())) + f" all:{mb(sum(r.values()))}",
                      flush=True)
            elapsed = time.monotonic() - t0
            stop.set()
            marker_thread.join()
            h = latency.health(port)
            t_end = time.monotonic()
            while h["analysed"] + h["quarantined"] < h["measurements"] and time.monotonic() - t_end < 300:
                time.sleep(1.0)
                h = latency.health(port)
            drained = time.monotonic() - t_end
            cpu_end = tree_cpu(proc.pid)
            analysed = h["analysed"]
            # every stored measurement analysed or set aside, else the run lost some (a 15-minute run
            # once lost a whole log segment to a torn end(): fixed, and this says so if it comes back)
            unanalysed = h["measurements"] - h["analysed"] - h["quarantined"]
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    start_rss = next((r for t, r in memory if t >= warmup), memory[0][1])
    t_start = next((t for t, r in memory if t >= warmup), memory[0][0])
    end_t, end_rss = memory[-1]
    p50_idle = statistics.median(idle)
    finite = [x for x in lat if x != float("inf")]
    p50 = statistics.median(lat) if lat else float("inf")
    total = lambda r: sum(r.values())  # noqa: E731
    growth = (total(end_rss) - total(start_rss)) / max(end_t - t_start, 1) * 3600
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} (other users of the machine included)")
    print(f"RESULT sustained_arrival_to_status_p50={p50:.2f} s max={max(lat, default=float('inf')):.2f} s "
          f"ratio={p50 / p50_idle:.1f} baseline(idle)={p50_idle:.2f} s markers={len(lat)} seen={len(finite)} "
          f"goal<5s")
    print(f"RESULT sustained_accepted={counts['accepted'] / elapsed:.0f}/s offered={args.rate:.0f}/s "
          f"probes={args.probes} minutes={elapsed / 60:.1f} "
          f"not_accepted={ {k: v for k, v in counts.items() if k not in ('accepted', 'generator_cpu', 'bodies_not_sent')} } "
          f"expect={'off' if args.no_expect else 'on'} bodies_not_sent={counts.get('bodies_not_sent', 0)} "
          f"(late: not sent in time, the generator "
          f"waited on the server; http_503: batches deferred, the analysis more than {args.max_analysis_lag:g} s behind) "
          f"backlog_drained_in={drained:.0f} s")
    print(f"RESULT sustained_rss_start={mb(total(start_rss))} (t={t_start:.0f} s) end={mb(total(end_rss))} "
          f"max_held={max_held or 'default'} max_uids={args.max_uids or 'default'} "
          f"(t={end_t:.0f} s) idle={mb(total(rss_idle))} growth={growth / (1 << 20):.0f} MB/hour; "
          + " ".join(f"{k}:{mb(start_rss.get(k, 0))}->{mb(v)}" for k, v in sorted(end_rss.items())))
    t_half, half_rss = next(((t, r) for t, r in memory if t >= end_t / 2), memory[0])
    print(f"RESULT sustained_rss_second_half={mb(total(half_rss))} (t={t_half:.0f} s) -> {mb(total(end_rss))} "
          f"(t={end_t:.0f} s): {(total(end_rss) - total(half_rss)) / max(end_t - t_half, 1) * 3600 / (1 << 20):.0f} MB/hour "
          f"(the analysis grows until its bounds fill: 400,000 held verdicts, 500,000 uids)")
    used = {k: cpu_end.get(k, 0.0) - cpu_start.get(k, 0.0) for k in cpu_end}
    print(f"RESULT sustained_cpu_per_measurement (µs of CPU per accepted measurement, load and drain): "
          + " ".join(f"{k}:{v / max(counts['accepted'], 1) * 1e6:.0f}" for k, v in sorted(used.items()))
          + f" all:{sum(used.values()) / max(counts['accepted'], 1) * 1e6:.0f} analysed={analysed}")
    sent = counts["accepted"] + BATCH * sum(v for k, v in counts.items() if k.startswith("http_"))
    print(f"  web per measurement offered (accepted or refused; a refused body is read unless Expect held it back): "
          f"{used.get('web', 0.0) / max(sent, 1) * 1e6:.0f} µs over {sent} offered")
    print(f"RESULT sustained_generator_cpu_per_measurement={counts.get('generator_cpu', 0.0) / max(sent, 1) * 1e6:.0f} µs "
          f"per measurement sent ({sent} sent; the load generator's sender threads, on the server's cores: "
          f"pre-built batches, one join each)")
    third = len(lat) // 3
    if third >= 3:
        print(f"  p50 by third of the load: {statistics.median(lat[:third]):.2f} s, "
              f"{statistics.median(lat[third:2 * third]):.2f} s, {statistics.median(lat[2 * third:]):.2f} s")
    print(f"RESULT sustained_unanalysed={unanalysed} of {analysed + unanalysed} stored, after the drain "
          f"(quarantined {h['quarantined']})")
    return 1 if unanalysed else 0


def start(data_dir: str, port: int, max_held: int | None = None, max_lag: float = 0.0, max_uids: int | None = None,
          profile: str | None = None):
    """`netvigil serve` with the analysis on and quotas that let one machine act as a fleet."""
    args = ["--rate", "100000", "--enrol-per-hour", "1000000"]
    if max_lag > 0:
        args += ["--max-analysis-lag", str(max_lag)]
    env = {"NETVIGIL_PROBE_TOKENS": TOKEN}
    if max_held:
        env["NETVIGIL_MAX_HELD_VERDICTS"] = str(max_held)
    if max_uids:
        env["NETVIGIL_MAX_HELD_UIDS"] = str(max_uids)
    if profile:
        env["NETVIGIL_PROFILE_ANALYSIS"] = profile
    return start_serve(data_dir, port, *args, env=env)  # benchmarks/_server.py


if __name__ == "__main__":
    sys.exit(main())
