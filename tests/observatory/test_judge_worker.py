"""The judge worker: the analysis with a second process judging gives exactly what the
analysis alone gives, and falls back to judging alone when the worker dies."""

from __future__ import annotations

import functools
import json
import os
import signal
import time
from pathlib import Path

import msgspec
import pytest

from netvigil.observatory.analyser import Analyser
from netvigil.collector.intake import accept
from netvigil.collector.log import MeasurementLog
from netvigil.model.measurement import encode_measurement
from netvigil.report.replay import load_run

DATA = Path(__file__).resolve().parent.parent / "data"


@functools.cache
def recorded() -> tuple:
    """The recorded russia-2022 run, decoded once per test process (16 MB of JSON: ~0.3 s of
    CPU each time; the tests only encode its measurements, never change them)."""
    return tuple(load_run(DATA / "lab" / "russia-2022"))


@functools.cache
def recorded_lines() -> tuple[bytes, ...]:
    """Its measurements as the collector logs them (each uid hashed once per test process)."""
    return tuple(accept(encode_measurement(m)).line for m in recorded())


def feed(log_dir: Path) -> list[bytes]:
    """The recorded russia-2022 run and OONI measurements as the collector logs them, plus a
    line without a uid and one that is not a measurement (neither comes from the collector)."""
    lines = list(recorded_lines())
    for p in sorted((DATA / "ooni" / "fastpath").glob("*.json")):
        try:
            lines.append(accept(p.read_bytes()).line)
        except Exception:
            continue  # a legacy measurement the collector refuses
    no_uid = json.loads(lines[-1])
    no_uid.pop("measurement_uid")
    no_uid["measurement_start_time"] = "2022-02-27 00:00:00"
    lines.insert(len(lines) // 2, msgspec.json.encode(no_uid))
    lines.insert(10, b'["not", "a", "measurement"]')
    lines.insert(20, lines[15])  # the same measurement twice: only its first line is archived
    mlog = MeasurementLog(log_dir)
    for i in range(0, len(lines), 50):
        mlog.append(lines[i:i + 50]).result()
    mlog.close()
    return lines


def archived_uids(data_dir: Path) -> list[str]:
    from netvigil.observatory.analyser import store_dir
    from netvigil.store.raw import RawArchive

    return sorted(m.measurement_uid for m in RawArchive(store_dir(data_dir) / "raw").read_all())


def run(data_dir: Path, *, worker: bool, kill_after: int | None = None) -> tuple[list, list, list, bool]:
    # small batches: many rounds, prefetches; a log written here has no provenance (one voice):
    # a quorum of 1 publishes its incidents (analysis/incidents/quorum.py)
    an = Analyser(data_dir, batch=37, judge_worker=worker, quorum=1)
    an.open()
    try:
        if worker:
            deadline = time.monotonic() + 60
            while not an.worker._started() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert an.worker.ready
        used = False
        end = max((int(p.name[4:12]), p.stat().st_size) for p in (data_dir / "log").glob("seg-*.jsonl"))
        for k in range(10_000):
            if an.checkpoint >= end:
                break
            if an.worker is not None:
                used = True
                if k == kill_after:
                    os.kill(an.worker.proc.pid, signal.SIGKILL)
                    an.worker.proc.wait()
                an.prefetch(end)
            an.round(end)
        an.round(end)  # the last refresh
        obs = an.store
        return (obs.verdicts(limit=None, order="ASC"), obs.incidents(), obs.status(), archived_uids(data_dir), used)
    finally:
        an.close()


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    d = tmp_path_factory.mktemp("alone")
    feed(d / "log")
    return run(d, worker=False)


@pytest.fixture(scope="module")
def with_worker(tmp_path_factory) -> tuple[Path, tuple]:
    """The same feed analysed with the worker: its data dir and what the run gave. Judged
    once per module (~1.4 s of CPU): the replay test goes on from this data dir (the store's
    database is named after its path, so a copy elsewhere would start empty)."""
    d = tmp_path_factory.mktemp("worker")
    feed(d / "log")
    return d, run(d, worker=True)


def test_worker_judges_exactly_as_the_analysis_alone(with_worker, alone):
    *got, used = with_worker[1]
    assert used
    assert got == list(alone[:4])
    assert len(got[0]) > 300 and got[1], "the run has verdicts and incidents"
    assert len(got[3]) == len(set(got[3])) == len(got[0]), "each measurement archived once"


def test_replaying_the_log_with_the_worker_adds_nothing(with_worker, alone):
    """After a crash the analysis re-reads from an older checkpoint: all known, none archived twice."""
    data_dir, first = with_worker
    assert first[-1], "the first run used the worker"
    (data_dir / "collector" / "analysed.json").unlink()
    *got, used = run(data_dir, worker=True)
    assert used and got == list(alone[:4])


def test_a_dead_worker_leaves_the_analysis_judging_alone(tmp_path, alone, caplog):
    feed(tmp_path / "log")
    *got, used = run(tmp_path, worker=True, kill_after=3)
    assert used and "judging in the analysis process from now on" in caplog.text
    assert got == list(alone[:4])


def test_worker_exits_with_the_analysis(tmp_path):
    feed(tmp_path / "log")
    an = Analyser(tmp_path, judge_worker=True)
    an.open()
    proc = an.worker.proc
    an.close()
    assert proc.poll() is not None


def open_analyser(data_dir: Path, worker: bool) -> Analyser:
    """An open Analyser (quorum 1); with WORKER, once its judge worker is ready."""
    an = Analyser(data_dir, judge_worker=worker, quorum=1)
    an.open()
    if worker:
        deadline = time.monotonic() + 60
        while not an.worker._started() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not an.worker.ready:
            an.close()
            pytest.fail("the judge worker did not start within 60 s")
    return an


@pytest.mark.parametrize("worker", [False, True], ids=["alone", "worker"])
@pytest.mark.parametrize("log", ["empty", "empty-last-segment"])
def test_the_checkpoint_reaches_an_end_past_an_empty_segment(tmp_path, log, worker):
    """A fresh data dir's log is one empty segment (end (1, 0), checkpoint (0, 0)); a rotation
    whose write failed leaves an empty last segment. Reading nothing up to that end, the round
    still moves the checkpoint there: else the analysis stays 'pending' and its process ran
    round after round at full speed (~2,000/s, a core) until the first measurement came."""
    if log == "empty-last-segment":
        lines = list(recorded_lines()[:3])
        mlog = MeasurementLog(tmp_path / "log")
        mlog.append(lines).result()
        mlog.close()
        (tmp_path / "log" / "seg-00000002.jsonl").touch()
    mlog = MeasurementLog(tmp_path / "log")
    end = mlog.end()
    mlog.close()
    assert end == ((1, 0) if log == "empty" else (2, 0))
    an = open_analyser(tmp_path, worker)
    try:
        for _ in range(3):  # one round reads everything here; a bug would stay pending
            if not an.pending(end):
                break
            an.round(end)
        assert an.checkpoint == end and not an.pending(end)
        assert an.worker is None if not worker else an.worker.ready, "the worker was not lost on the way"
        assert json.loads((tmp_path / "collector" / "analysed.json").read_text()) == {"segment": end[0], "offset": end[1]}
        assert len(an.store.verdicts(limit=None)) == (0 if log == "empty" else 3)
    finally:
        an.close()


@pytest.mark.parametrize("worker", [False, True], ids=["alone", "worker"])
def test_a_stop_inside_a_line_being_written_skips_nothing(tmp_path, worker):
    """A 30-minute load lost a whole log segment (~14,000 measurements): across a rotation the
    log's end read as (new segment, old segment's size), and the round, having read every
    line there was, took that end as reached. The checkpoint stops at the last whole line
    read: the half-written line after it is read once it is whole, and nothing is skipped."""
    ms = recorded()[:4]
    lines = [accept(encode_measurement(m)).line for m in ms]
    log_dir = tmp_path / "log"
    mlog = MeasurementLog(log_dir)
    mlog.append(lines[:3]).result()
    whole = mlog.end()
    mlog.close()
    seg = log_dir / "seg-00000001.jsonl"
    with open(seg, "ab") as f:  # the writer part-way through the fourth line
        f.write(lines[3][:100])
    stop = (1, whole[1] + len(lines[3]) + 1)  # an end past what the file holds yet
    an = open_analyser(tmp_path, worker)
    try:
        an.round(stop)
        assert an.checkpoint == whole, "the checkpoint passed a line it did not read"
        with open(seg, "ab") as f:  # the write completes
            f.write(lines[3][100:] + b"\n")
        for _ in range(3):
            if not an.pending(stop):
                break
            an.round(stop)
        assert an.checkpoint == stop
        assert sorted(v.measurement_uid for v in an.store.verdicts(limit=None)) == \
            sorted(accept(encode_measurement(m)).uid for m in ms)
        assert not (tmp_path / "collector" / "quarantine.jsonl").exists(), "no fragment of a line was read"
    finally:
        an.close()
