"""The quorum's own caches follow the live window's uid bound (issue #13): an analysis run with
a small NETVIGIL_MAX_HELD_UIDS holds a small voice cache (quorum.VoiceBook) and few uids one
by one in the status cells (cell_voices.CellVoices), however many measurements pass through;
and it publishes the same status as an analysis with the default bounds (what was let go is
read back from the store's `voices` table, or folded and still counted)."""

from __future__ import annotations

from pathlib import Path

from netvigil.analysis.incidents.cell_voices import TRACKED_SHARE
from netvigil.collector.intake import accept
from netvigil.collector.log import MeasurementLog
from netvigil.collector.provenance import Provenance, ProvenanceLog
from netvigil.model.measurement import encode_measurement
from netvigil.observatory.analyser import Analyser
from netvigil.report.replay import load_run

DATA = Path(__file__).resolve().parent.parent / "data"
BOUND = 60  # uids: the recorded run has 384 measurements


def _end(log_dir: Path) -> tuple[int, int]:
    return max((int(p.name[4:12]), p.stat().st_size) for p in log_dir.glob("seg-*.jsonl"))


def _run(data: Path, accepted: list, sizes: list | None) -> dict:
    """Feed the run in batches as the collector does (provenance first); the published status
    cells at the end, and each round's cache sizes appended to SIZES."""
    mlog = MeasurementLog(data / "log")
    prov = ProvenanceLog(data / "collector" / "provenance.jsonl")
    an = Analyser(data, batch=10_000, judge_worker=False, quorum=2)
    an.open()
    try:
        an.round((0, 0))
        for k in range(0, len(accepted), 24):
            batch = accepted[k:k + 24]
            prov.append([Provenance(uid=a.uid, network=f"192.0.2.{i % 5}/24", probe_id=f"probe-{i % 5}",
                                    claim="match") for i, a in enumerate(batch)])
            mlog.append([a.line for a in batch]).result()
            an.round(_end(data / "log"))
            if sizes is not None:
                cells = an.gate.cells
                sizes.append((len(an.book._rows), len(an.book._interned), cells.listed, len(cells.of_uid)))
        an.round(_end(data / "log"))  # nothing new: the incidents are refreshed (not throttled)
        public, apart = an._publish(set(), [], True)  # the whole status, as a first round publishes it
        published = {(r.country, r.asn, r.service): (r.klass, r.confirmed, r.independent_probes)
                     for rows in list(public.values()) + list(apart.values()) for r in rows}
        return published
    finally:
        an.close()
        mlog.close()


def test_small_uid_bound_holds_small_quorum_caches_and_publishes_the_same(tmp_path, monkeypatch):
    accepted = [accept(encode_measurement(m)) for m in load_run(DATA / "lab" / "russia-2022")]
    assert len(accepted) > 4 * BOUND
    big_sizes: list = []
    big = _run(tmp_path / "big", accepted, big_sizes)
    monkeypatch.setenv("NETVIGIL_MAX_HELD_UIDS", str(BOUND))
    sizes: list = []
    small = _run(tmp_path / "small", accepted, sizes)
    tracked = int(BOUND * TRACKED_SHARE)
    for rows, interned, listed, of_uid in sizes:
        assert rows <= BOUND and interned <= BOUND + 1 and listed <= tracked and of_uid <= tracked
    # the default bounds held every uid: the small bound is what kept the caches small
    assert max(s[0] for s in big_sizes) == len(accepted) and max(s[2] for s in big_sizes) > tracked
    assert small == big and any(c for _, c, _ in small.values())
