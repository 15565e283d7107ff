"""The analysis' cost per measurement as its held window fills (issue #13), without HTTP.

Why: under bench_sustained the analysis' CPU per measurement grew with the run (220-560 us in
one minute, 2,394 us over 30 minutes) until the lag gate refused nearly everything. This
drives the Analyser (observatory/analyser.py) as the service does, round after round: each
round PER_ROUND measurements from PROBES enrolled probes in ten countries (the OONI corpus of
bench_collector_ingest, stamped one second later each round), their provenance lines written
first and their log lines after (as the collector does), then one `round()`. It prints the
round CPU per measurement by slice of rounds (the held window grows, then its bounds cut it),
for the analysis as it is and, in the same run (rounds taken in turn), for two baselines: the
one that read the provenance file after the log lines (every line committed since the last
round was then "late": every incident judged again and every status cell counted again from
the whole window), "whole grid" (`WholeGrid`: every status cell of the changed countries
looked at again each round, and the slot median taken over every other network's rate) and
"rows rebuilt" (`RowsRebuilt`: each changed country's status rows built again from its whole
grid, as before window.LiveState.country_rows patched them) and "regrouped"
(`RefreshRegrouped`: the incident refresh before it was made incremental: the whole window
grouped by series and each series sorted again, every round of every changed series stepped
again, the quorum gate scanning the whole window per incident, a late verdict having the window
sorted again). It also prints each variant's publication CPU per round (`Analyser._publish`:
the changed countries' rows and their quorum backing) and its incident refresh's CPU per
refresh (`AnalysedStore.refresh`); `--baselines` picks the baselines run beside "now".

    .venv/bin/python benchmarks/bench_analysis_rounds.py                    # 80 rounds x 1,000
    .venv/bin/python benchmarks/bench_analysis_rounds.py --rounds 20 --per-round 200   # a quick look
    .venv/bin/python benchmarks/bench_analysis_rounds.py --rounds 24 --per-round 500 --max-held 30000 --max-uids 40000
        # what benchmarks/run.py runs (~3 minutes): the configuration of the figures below

Measured 2026-12-06 (2 cores shared with a CI run), 500/round, median us per measurement by
quarter of the rounds: bounds 8,000/10,000, 40 rounds: baseline 673, 998, 1011, 1191; now 579,
597, 660, 785 (1.52x in the last quarter). Bounds 30,000/40,000, 80 rounds: baseline 731,
1370, 1704, 2219; now 611, 659, 731, 1080 (2.05x): the baseline's extra cost per round grows
with the held window (the status cells counted again from it, every incident judged again).
Whole grid, bounds 30,000/40,000, 60 rounds, the three in turn: whole grid 518, 726, 800, 1018;
now 603, 772, 749, 881 (1.15x in the last quarter; log-first 2,044: 2.32x). The OONI corpus
has no control rates, so the slot median is not exercised here: bench_slot_median.py.
What still grows here is bounded: the refresh (throttled to a fifth of the time) and the
status grid while 1,000 probes' cells fill.
Publication patched (2026-12-06, load average 5-9, `--rounds 40 --per-round 500 --max-held
30000 --max-uids 40000`; ~260 of ~3,070 cells move a round): publication ms per round by
quarter, rows rebuilt 13.3, 21.8, 21.0, 20.1 / whole grid 12.4, 26.6, 30.7, 23.7 / now 9.1,
14.0, 16.3, 16.5 (1.22x and 1.44x in the last quarter); the revision before (2e685bb), run
alone in turn with this one, twice: 38.3 and 47.3 -> 20.9 and 21.2 ms in the last quarter.
Incremental refresh (2026-12-06, load average 8, `--rounds 24 --per-round 500 --max-held 30000
--max-uids 40000 --baselines regrouped`): refresh ms per refresh by quarter, regrouped 43.4,
49.8, 74.3, 92.7, now 35.0, 44.3, 54.7, 68.6 (1.35x in the last quarter); CPU per measurement
821 -> 742 us (1.11x). This corpus builds no incident (the gate's part is not exercised) and
~600 of its series change each refresh: what is left is per changed series (detect_spans'
rounds, ~60 us each) and the silences (per network, over its whole window). With `--late 5`
(each line stamped up to 5 s before its round, as a fleet's arrive), 40 rounds: refresh ms by
quarter 27.6, 71.7, 90.1, 157.9 -> 36.0, 43.9, 61.6, 127.8 (1.24x), CPU per measurement in
the last quarter 724 -> 566 us (1.28x); 24 rounds: 83.8 -> 59.7 ms (1.40x).

Bounds: --max-held / --max-uids (NETVIGIL_MAX_HELD_VERDICTS / _UIDS), small by default so a
short run reaches them. Everything stays in a temporary directory; no network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import bench_collector_ingest as ingest  # noqa: E402

from netvigil.analysis import analysed_store  # noqa: E402
from netvigil.analysis.incidents import builder, changes, quorum, window  # noqa: E402
from netvigil.analysis.incidents.quorum import voice_row  # noqa: E402
from netvigil.collector.intake import accept  # noqa: E402
from netvigil.collector.log import MeasurementLog  # noqa: E402
from netvigil.collector.provenance import Provenance, ProvenanceLog  # noqa: E402
from netvigil.model import times  # noqa: E402
from netvigil.observatory.analyser import Analyser  # noqa: E402

COUNTRIES = ("RU", "IR", "CN", "TR", "BY", "KZ", "MM", "PK", "VE", "ET")
START = "2026-12-01 00:00:00"


class LogFirst(Analyser):
    """The baseline: the round's log lines matched to provenance before the file is read."""

    def _voices(self, uids: list[str]) -> None:
        rows = self.book.from_log(uids)
        late = self.book.tail()
        if rows or late:
            self.store.db.insert("voices", rows + [voice_row(p.uid, p) for p in late])
        if self.book.reload_trust() or late:
            self.store.regate()
            self.stale = True


class WholeGrid(Analyser):
    """The baseline of issue #13's per-round costs, put back on today's analysis: each network's
    reference rate the `statistics.median` of every other network's rate in its time slot
    (O(n) per network: O(n^2 log n) a slot), and every status cell of the changed countries
    looked at again each round (its window, its count's memo, its published row built again)."""

    def open(self) -> None:
        super().open()
        ctx, gate = self.store.engine.rounds, self.gate
        status = gate.status

        def baseline(network: tuple, slot: str | None = None):
            rates = ctx.control_rates.get(network)
            if rates and len(rates) >= ctx.rules.thresholds["baseline_min"]:
                return statistics.median(rates), "own_history"
            per = ctx.slot_rates.get(slot or "")
            others = [r for n, r in (per.by_network.items() if per is not None else ()) if n != network]
            if others:
                return statistics.median(others), "other_vantages_same_time"
            return None, ""

        def whole_grid(rows, verdicts_since, incidents):
            gate._last.clear()  # no row kept from the last round: each is windowed and built again
            return status(rows, verdicts_since, incidents)

        ctx._baseline = baseline
        gate.status = whole_grid


class RowsRebuilt(Analyser):
    """The baseline of the patched publication: each changed country's status rows built
    again from its whole grid each round (new objects, so the quorum compares each with the
    row it published last time), as before window.LiveState.country_rows kept them."""

    def _publish(self, *args, **kwargs):
        self.store.live._published.clear()
        return super()._publish(*args, **kwargs)


def _old_detect_spans(cc, asn, service, verdicts, params, memo=None):
    """detect_spans before 5969423: both machines step through every round of the series."""
    rounds = [(r, r.state(params["open_share"])) for r in changes.rounds_of(verdicts, memo)]
    name = next((v.probe_network_name for v in verdicts if v.probe_network_name), None)
    spans = _old_machine(cc, asn, service, name, rounds, "censorship", "blocked", {"ok"}, params)
    spans += _old_machine(cc, asn, service, name, rounds, "outage", "outage", {"ok", "blocked"}, params)
    return sorted(spans, key=lambda s: s.start)


def _old_machine(cc, asn, service, name, rounds, kind, bad, good, params):
    open_rounds, close_rounds = int(params["open_rounds"]), int(params["close_rounds"])
    spans, cur, pending, good_run = [], None, [], []
    for rnd, st in rounds:
        if st != bad and st not in good:
            continue
        if cur is None:
            if st == bad:
                pending.append(rnd)
                if len(pending) >= open_rounds:
                    cur = changes.Span(cc, asn, service, kind, pending[0].time, None, name)
                    for r in pending:
                        changes._add(cur, r, bad)
                    pending = []
            else:
                pending = []
            continue
        if st == bad:
            good_run = []
            changes._add(cur, rnd, bad)
            continue
        good_run.append(rnd)
        if len(good_run) >= close_rounds:
            cur.end = good_run[0].time
            changes._close_segment(cur, cur.end)
            spans.append(cur)
            cur, good_run = None, []
    if cur is not None:
        spans.append(cur)
    return spans


class RefreshRegrouped(Analyser):
    """The baseline of the incremental refresh (issue #13), put back for this analyser's rounds
    only: each refresh groups and sorts the country's whole window again
    (builder.spans_from_verdicts, not the window's kept series), steps every round of every
    changed series again (detect_spans before 5969423), the quorum gate scans the whole window
    for each incident (no quorum.by_network), and a verdict that comes after a later one has the
    window sorted again at the next refresh (window.LATE_PLACE 0)."""

    def round(self, stop):
        def regrouped(vs, params, version, cache=None, grouped=None):
            return builder.build_incidents(vs, params, version, cache)

        saved = (builder.detect_spans, analysed_store.build_incidents, quorum.by_network, window.LATE_PLACE)
        builder.detect_spans, analysed_store.build_incidents = _old_detect_spans, regrouped
        quorum.by_network, window.LATE_PLACE = (lambda verdicts: None), 0
        try:
            return super().round(stop)
        finally:
            builder.detect_spans, analysed_store.build_incidents, quorum.by_network, window.LATE_PLACE = saved


def templates() -> list[dict]:
    return [m for m in ingest.corpus() if isinstance(m, dict)]


def round_lines(tpl: list[dict], r: int, per_round: int, probes: int, late: int = 0) -> list[tuple[int, bytes]]:
    """(probe, raw line) for round R: probes take turns, each line stamped at START + R s, or
    with LATE up to that many seconds before (spread by index: a fleet's lines arrive late)."""
    stamp = times.shift(START, r)
    out = []
    for i in range(per_round):
        k = (r * per_round + i) % probes
        if late:
            stamp = times.shift(START, max(0, r - (r * per_round + i) * 7919 % (late + 1)))
        m = dict(tpl[(r * per_round + i) % len(tpl)], measurement_start_time=stamp, probe_asn=f"AS{4_100_000_000 + k}",
                 probe_cc=COUNTRIES[k % len(COUNTRIES)], probe_network_name=f"bench-net-{k}", report_id=f"bench{k:05d}")
        out.append((k, json.dumps(m, separators=(",", ":")).encode()))
    return out


def run(cls, rounds: int, per_round: int, probes: int, late: int = 0) -> Iterator[tuple[float, float, float]]:
    """(round CPU seconds per measurement, the round's publication CPU seconds, its incident
    refresh's CPU seconds: 0 when it did not refresh), round by
    round (a generator: the variants' rounds are taken in turn, so a shared machine's load
    falls on each alike). Publication: `Analyser._publish` (the changed countries' status
    rows and their quorum backing)."""
    tpl = templates()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        mlog = MeasurementLog(data / "log")
        prov = ProvenanceLog(data / "collector" / "provenance.jsonl")
        an = cls(data, batch=per_round, judge_worker=False, quorum=2)
        an.open()
        spent = [0.0]
        publish = an._publish

        def timed(*args, **kwargs):
            p0 = time.process_time()
            try:
                return publish(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - p0

        an._publish = timed
        refreshed = [0.0]
        refresh = an.store.refresh

        def timed_refresh():
            p0 = time.process_time()
            try:
                return refresh()
            finally:
                refreshed[0] += time.process_time() - p0

        an.store.refresh = timed_refresh
        try:
            an.round((0, 0))
            for r in range(rounds):
                accepted = []
                for k, raw in round_lines(tpl, r, per_round, probes, late):
                    try:
                        accepted.append((k, accept(raw)))
                    except Exception:  # noqa: BLE001  (a corpus line the collector refuses)
                        continue
                prov.append([Provenance(uid=a.uid, network=f"198.51.{k // 256}.{k % 256}/24", probe_id=f"probe-{k}",
                                        claim="match") for k, a in accepted])
                mlog.append([a.line for _, a in accepted]).result()
                end = max((int(p.name[4:12]), p.stat().st_size) for p in (data / "log").glob("seg-*.jsonl"))
                spent[0] = refreshed[0] = 0.0
                c0 = time.process_time()
                res = an.round(end)
                yield (time.process_time() - c0) / max(res.analysed, 1), spent[0], refreshed[0]
        finally:
            an.close()
            mlog.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="example: bench_analysis_rounds.py --rounds 60 --per-round 500")
    ap.add_argument("--rounds", type=int, default=80, help="rounds per variant (default 80)")
    ap.add_argument("--per-round", type=int, default=1000, help="measurements per round (default 1000)")
    ap.add_argument("--probes", type=int, default=1000, help="distinct probes (default 1000)")
    ap.add_argument("--max-held", type=int, default=40_000, help="held verdicts bound (default 40,000)")
    ap.add_argument("--max-uids", type=int, default=50_000, help="held uids bound (default 50,000)")
    ap.add_argument("--slices", type=int, default=4, help="slices of rounds to report (default 4)")
    ap.add_argument("--late", type=int, default=0,
                    help="stamp each measurement up to this many seconds before its round (default 0: on time)")
    ap.add_argument("--baselines", default="log-first,whole-grid,rows-rebuilt,regrouped",
                    help="baselines run in turn with `now` (comma-separated; default all four)")
    args = ap.parse_args(argv)
    if min(args.rounds, args.per_round, args.probes, args.max_held, args.max_uids, args.slices) < 1 or args.late < 0:
        ap.error("every number must be positive (--late: 0 or more)")
    os.environ["NETVIGIL_MAX_HELD_VERDICTS"] = str(args.max_held)
    os.environ["NETVIGIL_MAX_HELD_UIDS"] = str(args.max_uids)
    baselines = {"log-first": ("log-first (baseline)", LogFirst, "analysis_rounds"),
                 "whole-grid": ("whole grid (baseline)", WholeGrid, "analysis_rounds_grid"),
                 "rows-rebuilt": ("rows rebuilt (baseline)", RowsRebuilt, "analysis_rounds_rows"),
                 "regrouped": ("regrouped (baseline)", RefreshRegrouped, "analysis_rounds_refresh")}
    chosen = [b.strip() for b in args.baselines.split(",") if b.strip()]
    if not chosen or any(b not in baselines for b in chosen):
        ap.error(f"--baselines: one or more of {', '.join(baselines)} (got {args.baselines!r})")
    variants = {baselines[b][0]: baselines[b][1] for b in chosen} | {"now": Analyser}
    runs = {name: run(cls, args.rounds, args.per_round, args.probes, args.late) for name, cls in variants.items()}
    results: dict[str, list[float]] = {name: [] for name in variants}
    published: dict[str, list[float]] = {name: [] for name in variants}
    refreshes: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(args.rounds):
            for name, rounds in runs.items():
                per, pub, ref = next(rounds)
                results[name].append(per)
                published[name].append(pub)
                refreshes[name].append(ref)
    finally:
        for rounds in runs.values():
            rounds.close()
    n = args.rounds
    edges = [round(i * n / args.slices) for i in range(args.slices + 1)]
    print(f"analysis CPU per measurement (us, median of each slice of rounds), {args.per_round}/round, "
          f"bounds {args.max_held:,} verdicts / {args.max_uids:,} uids, up to {args.late} s late")
    for name, per in results.items():
        cells = [statistics.median(per[a:b]) * 1e6 for a, b in zip(edges, edges[1:]) if b > a]
        print(f"  {name:22s} " + "  ".join(f"{c:7.0f}" for c in cells))
    print("publication CPU per round (ms, median of each slice: the changed countries' status rows)")
    for name, per in published.items():
        cells = [statistics.median(per[a:b]) * 1e3 for a, b in zip(edges, edges[1:]) if b > a]
        print(f"  {name:22s} " + "  ".join(f"{c:7.1f}" for c in cells))
    print("incident refresh CPU (ms, mean per refresh in each slice: refreshes / rounds)")
    for name, per in refreshes.items():
        cells = []
        for a, b in zip(edges, edges[1:]):
            done = [x for x in per[a:b] if x > 0]
            cells.append(f"{(statistics.mean(done) * 1e3 if done else 0):7.1f} ({len(done)}/{b - a})")
        print(f"  {name:22s} " + "  ".join(cells))
    last = edges[-2]
    new = statistics.median(results["now"][last:])
    new_pub = statistics.median(published["now"][last:])
    for b in chosen:
        name, _, key = baselines[b]
        base = statistics.median(results[name][last:])
        print(f"RESULT {key} last_slice_us baseline={base * 1e6:.0f} now={new * 1e6:.0f} "
              f"ratio={base / max(new, 1e-9):.2f}x")
        base_pub = statistics.median(published[name][last:])
        print(f"RESULT {key}_publication last_slice_ms baseline={base_pub * 1e3:.1f} now={new_pub * 1e3:.1f} "
              f"ratio={base_pub / max(new_pub, 1e-9):.2f}x")
        base_ref = [x for x in refreshes[name][last:] if x > 0]
        new_ref = [x for x in refreshes["now"][last:] if x > 0]
        if base_ref and new_ref:
            b_ms, n_ms = statistics.mean(base_ref) * 1e3, statistics.mean(new_ref) * 1e3
            print(f"RESULT {key}_refresh last_slice_ms_per_refresh baseline={b_ms:.1f} now={n_ms:.1f} "
                  f"ratio={b_ms / max(n_ms, 1e-9):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
