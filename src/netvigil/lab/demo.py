"""`netvigil demo`: the russia-2022 scenario end to end.

With root and network namespaces: build the lab, run the scenario on a compressed clock
with progress (an agent in every ISP submitting to the lab's observatory, lab/fleet.py),
analyse what that observatory acknowledged with the AnalysedStore and print the incidents it
found, then serve the dashboard until Ctrl-C. Without them: say so in one line and replay
the bundled measurements recorded from a real run of the same lab (src/netvigil/data/recorded/),
so the command always shows something real.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import zstandard
from rich.console import Console
from rich.table import Table

from netvigil.errors import LabError

RECORDED = Path(__file__).resolve().parent.parent / "data" / "recorded" / "russia-2022"
SCENARIO = "russia-2022"


def replay_recorded(run_dir: Path) -> Path:
    """Copy the recorded run (measurements, labels, run.json) into run_dir."""
    if not (RECORDED / "measurements.jsonl.zst").exists():
        raise LabError("the recorded russia-2022 run is missing from this installation", where=str(RECORDED))
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(RECORDED / "measurements.jsonl.zst", "rb") as src, open(run_dir / "measurements.jsonl", "wb") as dst:
        zstandard.ZstdDecompressor().copy_stream(src, dst)
    for name in ("labels.jsonl", "run.json"):
        shutil.copyfile(RECORDED / name, run_dir / name)
    return run_dir


def measurement_summary(run_dir: Path) -> Table:
    """Per network and service: measurements, and how many had any failed step."""
    import msgspec

    counts: Counter = Counter()
    failed: Counter = Counter()
    names: dict[str, str] = {}
    for line in (run_dir / "measurements.jsonl").read_bytes().splitlines():
        if not line.strip():
            continue
        m = msgspec.json.decode(line)
        ann = m.get("annotations") or {}
        key = (m["probe_asn"], ann.get("path", "direct"), ann.get("service") or m.get("input"))
        names[m["probe_asn"]] = m.get("probe_network_name") or ""
        counts[key] += 1
        tk = m.get("test_keys") or {}
        bad = any(not c["status"]["success"] for c in tk.get("tcp_connect") or []) or any(
            x.get("failure") for k in ("tls_handshakes", "requests", "queries") for x in tk.get(k) or []
            if not (k == "queries" and x.get("query_type") == "AAAA"))
        failed[key] += bad
    t = Table(title="Measurements (failed = any step failed)")
    for col in ("network", "path", "service", "measurements", "failed"):
        t.add_column(col)
    for (asn, path, svc), n in sorted(counts.items()):
        t.add_row(f"{names.get(asn, '')} {asn}", path, str(svc), str(n), str(failed[(asn, path, svc)]))
    return t


def analyse(run_dir: Path, data_dir: Path, console: Console) -> list:
    """Feed the run to the AnalysedStore; return its incidents."""
    from netvigil.analysis.analysed_store import AnalysedStore
    from netvigil.model.measurement import decode_measurement

    ms = [decode_measurement(line, where=f"{run_dir}/measurements.jsonl:{i}")
          for i, line in enumerate((run_dir / "measurements.jsonl").read_bytes().splitlines(), 1) if line.strip()]
    with AnalysedStore(data_dir) as obs:
        for i in range(0, len(ms), 500):
            obs.add(ms[i:i + 500])
        obs.refresh()
        incidents = obs.incidents()
    console.print(f"observatory: {len(ms)} measurements analysed, {len(incidents)} incidents")
    return incidents


def _hm(t: str | None) -> str:
    return t[11:16] if t else "ongoing"


def incident_text(incident) -> str:
    from netvigil.report.text import incident_text as statement

    return statement(incident)


def incident_lines(incidents: list) -> list[str]:
    """One line per incident, then one per network with how its technique changed."""
    out = []
    for inc in incidents:
        service = "all services" if inc.service in ("*", "") else inc.service
        out.append(f"{service} in {inc.country}: {inc.kind} from {inc.start} to {inc.end or 'ongoing'}"
                   f" on {len(inc.networks)} network(s); circumvention (VPN): {inc.circumvention}")
        for n in inc.networks:
            steps = n.techniques or [{"technique": n.technique, "start": n.start, "end": n.end}]
            chain = " -> ".join(f"{x.get('technique')} {_hm(x.get('start'))}-{_hm(x.get('end'))}" for x in steps)
            out.append(f"    {n.network_name or ''} {n.asn}: {chain}")
    return out


def serve_dashboard(data_dir: Path, port: int, console: Console) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "netvigil", "serve", "--port", str(port), "--data-dir",
                             str(data_dir)], stdin=subprocess.DEVNULL)
    console.print(f"dashboard: http://127.0.0.1:{port}/  (Ctrl-C to stop)")
    try:
        while proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def run_demo(out: Path, *, serve: bool = True, port: int = 8470, rounds: int | None = None,
             replay: bool = False) -> None:
    from netvigil.lab.runner import prerequisites

    console = Console(stderr=True, highlight=False, soft_wrap=True)  # commands stay copyable
    out = Path(out)
    run_dir, data_dir = out / "run", out / "observatory"
    shutil.rmtree(data_dir, ignore_errors=True)
    missing = prerequisites()
    if missing or replay:
        if missing:
            console.print(f"netvigil demo: the lab needs {', '.join(missing)}; replaying the measurements "
                          f"recorded from a real russia-2022 lab run instead", markup=False)
        shutil.rmtree(run_dir, ignore_errors=True)
        replay_recorded(run_dir)
    else:
        from netvigil.lab.progress import run_with_progress
        from netvigil.lab.scenario import load_scenario

        s = load_scenario(SCENARIO)
        console.print(f"netvigil demo: {s.name}: {s.description}")
        summary = run_with_progress(s, run_dir, rounds=rounds, timeout=3.0, parallel=4)
        console.print(f"lab run: {summary.rounds} rounds, {summary.measurements} measurements from "
                      f"{summary.agents} agents (enrolled, checked in, submitted to the lab's observatory) in "
                      f"{summary.wall_seconds:.0f} s -> {run_dir}", markup=False)
    console.print(measurement_summary(run_dir))
    incidents = analyse(run_dir, data_dir, console)
    console.print("[bold]What the observatory found[/]")
    for line in incident_lines(incidents):
        console.print(line, markup=False)
    console.print("[bold]Incident statements[/]")
    for inc in incidents:
        console.print(f"- {incident_text(inc)}  (netvigil report {inc.id} --data-dir {data_dir})", markup=False)
    console.print(f"ground truth: {run_dir / 'labels.jsonl'}  (score it: netvigil evaluate --lab {run_dir})")
    if serve:
        serve_dashboard(data_dir, port, console)
    else:
        console.print(f"dashboard: netvigil serve --data-dir {data_dir} --port {port}, "
                      f"then open http://127.0.0.1:{port}/", markup=False)
