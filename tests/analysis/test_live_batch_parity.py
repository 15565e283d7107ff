"""One verdict engine: the same measurements give byte-identical verdicts, incidents and status
whichever way they reach it (issue #16):

- `netvigil analyse` / `incidents` (verdict_stream over the file),
- `netvigil serve` fed over HTTP (POST /api/v1/submit, a few lines per request, so rounds
  arrive in pieces; the analysis process judges in its judge worker on a 2-core machine),
- the same collector log analysed again without the judge worker (Analyser, small batches),
- `netvigil rebuild` of the served store,
on every recorded lab run and on the OONI measurements of tests/data/ooni the collector
accepts (fastpath files and explorer_raw.jsonl; spec_examples.jsonl holds no measurement).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from netvigil.analysis.incidents.builder import build_incidents
from netvigil.analysis.rules import load_rules
from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.analysis.verdicts.engine import verdicts
from netvigil.observatory.analyser import Analyser, store_dir
from netvigil.collector.intake import Rejected, accept
from netvigil.model.measurement import decode_measurement, encode_measurement
from netvigil.report.replay import load_run
from netvigil.observatory.serve import ObservatoryThread

DATA = Path(__file__).resolve().parents[1] / "data"
RECORDED = Path(__file__).resolve().parents[2] / "src" / "netvigil" / "data" / "recorded"
RUNS = sorted(p for p in (DATA / "lab").iterdir() if (p / "measurements.jsonl.zst").exists()) + [RECORDED / "russia-2022"]
TOKEN = "parity"

pytestmark = [pytest.mark.slow]


def _lines(source: str) -> list[bytes]:
    """The measurements as a probe would submit them (OONI JSONL lines)."""
    if source == "ooni":
        out = []
        for p in sorted((DATA / "ooni" / "fastpath").glob("*.json")):
            try:
                accept(p.read_bytes())
            except Rejected:
                continue  # a legacy measurement the collector refuses: not submitted
            out.append(p.read_bytes().replace(b"\n", b" ").strip())
        out += [line.strip() for line in (DATA / "ooni" / "explorer_raw.jsonl").read_bytes().splitlines() if line.strip()]
        return out
    return [encode_measurement(m) for m in load_run(Path(source))]


def _as_stored(line: bytes):
    """What the collector keeps of a line (probe IP scrubbed, uid added): what `analyse` is
    then run on, so both sides see the same measurement."""
    return decode_measurement(accept(line).line)


def _enc(items) -> list[bytes]:
    return [msgspec.json.encode(x) for x in items]


def _batch(measurements):
    rules = load_rules()
    vs = list(verdicts(measurements, rules))
    incidents = build_incidents(vs, rules.incidents, rules.version)
    # the store lists verdicts by (time, uid)
    vs.sort(key=lambda v: (v.measurement_start_time, v.measurement_uid))
    return _enc(vs), _enc(incidents)


def _analysis_only(i):
    """The incident without what the quorum gate adds for publication (analysis/incidents/quorum.py: who
    backs it), which a batch analysis of a file cannot know."""
    ev = i.evidence and msgspec.structs.replace(i.evidence, independent_probes=None, source_networks=None,
                                                trusted=False)
    return msgspec.structs.replace(i, evidence=ev, confirmed=True)


def _read(obs: AnalysedStore):
    return (_enc(obs.verdicts(limit=None, order="ASC")), _enc(map(_analysis_only, obs.incidents())),
            _enc(obs.status()))


def _serve(data_dir: Path, lines: list[bytes]) -> None:
    with ObservatoryThread(data_dir, analysis_interval=0.1, probe_tokens={TOKEN}) as srv:
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
            for i in range(0, len(lines), 7):  # rounds arrive in pieces, as from many probes
                r = client.post("/api/v1/submit", content=b"\n".join(lines[i:i + 7]) + b"\n")
                assert r.status_code == 200, r.text
            deadline = time.monotonic() + 120  # a bound for a broken analysis, not a speed limit
            while time.monotonic() < deadline:
                health = client.get("/api/v1/health").json()
                if health["analysed"] >= len(lines):
                    break
                time.sleep(0.1)
            assert health["analysed"] == len(lines), health


def _without_worker(served: Path, copy: Path) -> tuple:
    """The served collector's log, analysed again from the start without the judge worker."""
    shutil.copytree(served / "log", copy / "log")
    (copy / "collector").mkdir()
    for name in ("provenance.jsonl", "publication.json"):  # who sent what: the quorum gate counts it
        shutil.copy(served / "collector" / name, copy / "collector" / name)
    an = Analyser(copy, batch=23, judge_worker=False)
    an.open()
    try:
        end = max((int(p.name[4:12]), p.stat().st_size) for p in (copy / "log").glob("seg-*.jsonl"))
        for _ in range(10_000):
            if an.checkpoint >= end:
                break
            an.round(end)
        an.round(end)
        return _read(an.store)
    finally:
        an.close()


@pytest.mark.parametrize("source", [str(p) for p in RUNS] + ["ooni"], ids=[p.parent.name + "/" + p.name for p in RUNS] + ["ooni"])
def test_analyse_serve_rebuild_and_worker_agree(tmp_path, source):
    lines = _lines(source)
    want_verdicts, want_incidents = _batch([_as_stored(x) for x in lines])
    assert want_verdicts

    _serve(tmp_path / "served", lines)
    with AnalysedStore(store_dir(tmp_path / "served")) as obs:
        served = _read(obs)
        obs.rebuild()
        rebuilt = _read(obs)
    assert served[0] == want_verdicts
    assert served[1] == want_incidents
    assert rebuilt == served
    assert _without_worker(tmp_path / "served", tmp_path / "again") == served
