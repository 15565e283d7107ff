"""The analysis reads who sent a measurement before it reads the measurement (issue #13).

The collector writes a measurement's provenance line before its log line
(collector/provenance.py), so every line a round reads has its provenance in the file by
then. Read in the other order (the log first, the provenance file after), each line
committed since the last round looked "late": its voice was taken as lost, then corrected,
which has every incident judged again and every status cell counted again from the whole
held window, every round under a steady load (measured: that recount grew with the window
and dominated the analysis over a long run; docs/benchmarks.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

from netvigil.collector.intake import accept
from netvigil.collector.log import MeasurementLog
from netvigil.collector.provenance import Provenance, ProvenanceLog
from netvigil.model.measurement import encode_measurement
from netvigil.observatory.analyser import Analyser
from netvigil.report.replay import load_run

DATA = Path(__file__).resolve().parent.parent / "data"


def _lines() -> list:
    return list(_accepted())


@functools.cache
def _accepted() -> tuple:
    """The russia-2022 run as the collector accepts it, once per test process (16 MB of JSON
    decoded and 384 uids: ~0.5 s of CPU; two tests read it, neither changes it)."""
    return tuple(accept(encode_measurement(m)) for m in load_run(DATA / "lab" / "russia-2022"))


def _end(log_dir: Path) -> tuple[int, int]:
    return max((int(p.name[4:12]), p.stat().st_size) for p in log_dir.glob("seg-*.jsonl"))


def _submit(mlog: MeasurementLog, prov: ProvenanceLog, batch: list, k: int) -> None:
    """As the collector does: provenance first, then the log line (collector/fleet_routes.py)."""
    prov.append([Provenance(uid=a.uid, network=f"192.0.2.{k % 4}/24", probe_id=f"probe-{k % 4}", claim="match")
                 for a in batch])
    mlog.append([a.line for a in batch]).result()


def test_lines_committed_between_rounds_are_never_late(tmp_path):
    accepted = _lines()
    assert len(accepted) > 40
    mlog = MeasurementLog(tmp_path / "log")
    prov = ProvenanceLog(tmp_path / "collector" / "provenance.jsonl")
    an = Analyser(tmp_path, batch=10_000, judge_worker=False, quorum=2)
    an.open()
    try:
        an.round((0, 0))  # the first round, before anything arrived (the service's start)
        start = an.book.generation
        pieces = [accepted[i:i + 20] for i in range(0, len(accepted), 20)]
        for k, batch in enumerate(pieces):
            _submit(mlog, prov, batch, k)  # after the last round read the provenance file
            res = an.round(_end(tmp_path / "log"))
            assert res.analysed == len(batch)
        # no voice was ever taken as lost and then corrected: nothing judged again
        assert an.book.generation == start
        rows = an.store.db.query(f"SELECT uid, probe_id, network FROM {an.store.table('voices')} FINAL")
        assert len(rows) == len(accepted)
        assert all(r["probe_id"].startswith("probe-") and r["network"].startswith("192.0.2.") for r in rows)
        said = an.book.voices([a.uid for a in accepted])
        assert {v.probe for v in said.values()} == {f"probe-{k}" for k in range(min(4, len(pieces)))}
    finally:
        an.close()
        mlog.close()


def test_a_line_whose_provenance_comes_after_it_is_still_counted(tmp_path):
    """Provenance really late (written after the round read its measurement): the voice is
    corrected and everything judged again, as before."""
    accepted = _lines()[:20]
    mlog = MeasurementLog(tmp_path / "log")
    prov = ProvenanceLog(tmp_path / "collector" / "provenance.jsonl")
    an = Analyser(tmp_path, batch=10_000, judge_worker=False, quorum=2)
    an.open()
    try:
        an.round((0, 0))
        start = an.book.generation
        mlog.append([a.line for a in accepted]).result()
        an.round(_end(tmp_path / "log"))
        assert an.book.voices([accepted[0].uid])[accepted[0].uid].probe == "unknown"  # lost, for now
        prov.append([Provenance(uid=a.uid, network="192.0.2.0/24", probe_id="probe-late", claim="match")
                     for a in accepted])
        an.round(_end(tmp_path / "log"))
        assert an.book.generation > start
        assert {v.probe for v in an.book.voices([a.uid for a in accepted]).values()} == {"probe-late"}
    finally:
        an.close()
        mlog.close()
