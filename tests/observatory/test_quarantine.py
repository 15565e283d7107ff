"""The analysis sets aside what it cannot read, judge or store, and goes on (quarantine.py).

Before, one measurement dated `2022-13-45 99:99:99` in the log failed every later round
('Cannot read DateTime'), and each retry appended the batch to the raw archive again.
These tests put such lines in a real collector log and run the real Analyser over a real
chdb store; poison the store cannot catch at intake is made by a judge or an insert that
raises for marked measurements.
"""

from __future__ import annotations

import collections
import functools
import json
from pathlib import Path

import msgspec
import pytest
import zstandard

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.engine import Judge
from netvigil.collector import intake
from netvigil.observatory.analyser import Analyser
from netvigil.observatory.judge_worker import Request, judge_batch
from netvigil.collector.log import MeasurementLog
from netvigil.collector.quarantine import Quarantine
from netvigil.errors import StoreError

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "tests" / "data" / "lab" / "russia-2022" / "measurements.jsonl.zst"


def recorded_lines() -> list[bytes]:
    """The recorded russia-2022 lab run, as the collector stores it (uid added): a new list
    of the lines read once per test process (each read and uid ~0.1 s of CPU, 11 calls)."""
    return list(_recorded_lines())


@functools.cache
def _recorded_lines() -> tuple[bytes, ...]:
    raw = zstandard.ZstdDecompressor().stream_reader(RUN.open("rb")).read()
    return tuple(intake.accept(line).line for line in raw.splitlines() if line.strip())


def uid_of(line: bytes) -> str:
    return json.loads(line)["measurement_uid"]


def write_log(data_dir: Path, lines: list[bytes]) -> None:
    mlog = MeasurementLog(data_dir / "log", fsync=False)
    mlog.append(lines).result(timeout=30)
    mlog.close()


def analyse(data_dir: Path, *, batch: int = 5000, rounds: int = 20) -> Analyser:
    """Run rounds until the log is analysed (bounded); the Analyser is left open."""
    a = Analyser(data_dir, batch=batch)
    a.open()
    stop = log_end(data_dir)
    for _ in range(rounds):
        if a.checkpoint >= stop and a.rounds:
            break
        a.round(stop)
    assert a.checkpoint >= stop, "the analysis did not reach the end of the log"
    return a


def log_end(data_dir: Path) -> tuple[int, int]:
    mlog = MeasurementLog(data_dir / "log", fsync=False)
    try:
        return mlog.end()
    finally:
        mlog.close()


def archived_uids(data_dir: Path) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for path in (data_dir / "store" / "raw").glob("*.jsonl.zst"):
        text = zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True).read()
        counts.update(uid_of(line) for line in text.splitlines() if line.strip())
    return counts


def verdict_dump(a: Analyser) -> list[bytes]:
    return sorted(msgspec.json.encode(v) for v in a.store.verdicts(limit=None))


BAD_TIME = b'{"measurement_uid":"20220226090000.000001_RU_webconnectivity_bad0time0000001","test_name":"web_connectivity","measurement_start_time":"2022-13-45 99:99:99","probe_cc":"RU","probe_asn":"AS12389","test_keys":{}}'


PHANTOM_CC = BAD_TIME.replace(b"2022-13-45 99:99:99", b"2022-02-26 09:00:00").replace(b'"RU"', b'"RU\\n"').replace(
    b"bad0time0000001", b"phantom00000001")


def test_an_unreadable_date_in_the_log_is_set_aside_and_the_rounds_go_on(tmp_path):
    lines = recorded_lines()[:40]
    write_log(tmp_path, lines[:20] + [BAD_TIME, b'{"not": "a measurement"', b"\xff\xfe", PHANTOM_CC] + lines[20:])
    a = analyse(tmp_path, batch=10)  # several rounds: the bad lines fall in the middle one
    try:
        entries = Quarantine(tmp_path).entries()
        assert [e.stage for e in entries] == ["decode"] * 4
        assert entries[0].uid == "20220226090000.000001_RU_webconnectivity_bad0time0000001"
        assert "measurement_start_time" in entries[0].reason
        assert "probe_cc" in entries[3].reason  # would have shown as a phantom country
        assert a.quarantined == 4
        stored = {r["uid"] for r in a.store.db.query(f"SELECT uid FROM {a.store.table('measurements')}")}
        assert stored == {uid_of(line) for line in lines}
        assert set(archived_uids(tmp_path).values()) == {1}  # each archived once
    finally:
        a.close()
    # a restart does not meet them again
    again = analyse(tmp_path, batch=10)
    try:
        assert again.quarantined == 0 and len(Quarantine(tmp_path).entries()) == 4
    finally:
        again.close()


def test_one_percent_poisoned_feed_keeps_going_and_good_verdicts_equal_a_clean_run(tmp_path, monkeypatch):
    lines = recorded_lines()
    poisoned = {uid_of(line) for line in lines[50::100]}  # 1 in 100
    assert len(poisoned) == len(lines) // 100 + (len(lines) % 100 > 50)
    good = [line for line in lines if uid_of(line) not in poisoned]

    clean_dir = tmp_path / "clean"
    write_log(clean_dir, good)
    clean = analyse(clean_dir)
    try:
        expected = verdict_dump(clean)
    finally:
        clean.close()

    real_judge = Judge.__call__

    def judge(self, m):
        if m.measurement_uid in poisoned:
            raise ValueError(f"poisoned test_keys in {m.measurement_uid}")
        return real_judge(self, m)

    monkeypatch.setattr(Judge, "__call__", judge)
    feed_dir = tmp_path / "feed"
    write_log(feed_dir, lines)
    a = analyse(feed_dir)
    try:
        entries = Quarantine(feed_dir).entries()
        assert {e.uid for e in entries} == poisoned and {e.stage for e in entries} == {"judge"}
        assert a.quarantined == len(poisoned)
        stored = a.store.db.query(f"SELECT count() AS n FROM {a.store.table('measurements')}")[0]["n"]
        assert int(stored) == len(lines) - len(poisoned)
        assert verdict_dump(a) == expected
        assert set(archived_uids(feed_dir)) == {uid_of(line) for line in good}
    finally:
        a.close()


def test_a_row_the_store_refuses_is_found_by_bisection_and_each_line_archived_once(tmp_path):
    lines = recorded_lines()[:64]
    refused = {uid_of(lines[5]), uid_of(lines[41])}
    write_log(tmp_path, lines)
    a = Analyser(tmp_path, batch=5000)
    a.open()
    insert = a.store.db.insert
    calls = collections.Counter()

    def picky_insert(table, rows):
        calls[table] += 1
        if table == "measurements" and any(r.get("uid") in refused for r in rows):
            raise StoreError("Code: 41. Cannot read DateTime: unexpected date")
        return insert(table, rows)

    a.store.db.insert = picky_insert
    try:
        a.round(log_end(tmp_path))
        entries = Quarantine(tmp_path).entries()
        assert {e.uid for e in entries} == refused and {e.stage for e in entries} == {"store"}
        assert all(e.position.length > 0 for e in entries)  # found in the log
        stored = {r["uid"] for r in a.store.db.query(f"SELECT uid FROM {a.store.table('measurements')}")}
        assert stored == {uid_of(line) for line in lines} - refused
        counts = archived_uids(tmp_path)
        assert set(counts) == {uid_of(line) for line in lines} and set(counts.values()) == {1}
        assert calls["measurements"] < 40  # bisection, not one insert per measurement
    finally:
        a.close()


def test_a_store_that_is_down_fails_the_round_without_quarantining_and_the_retry_archives_nothing_twice(tmp_path):
    lines = recorded_lines()[:10]
    write_log(tmp_path, lines)
    a = Analyser(tmp_path, batch=5000)
    a.open()

    def down(*args, **kwargs):
        raise StoreError("connection refused")

    real_insert, real_query = a.store.db.insert, a.store.db.query
    a.store.db.insert = down  # fails after the raw archive was written
    a.store.db.query = lambda sql: down() if sql == "SELECT 1" else real_query(sql)
    try:
        with pytest.raises(StoreError):
            a.round(log_end(tmp_path))
        assert Quarantine(tmp_path).entries() == [] and a.checkpoint == (0, 0)
        assert set(archived_uids(tmp_path).values()) == {1}
        write_log(tmp_path, recorded_lines()[10:15])  # more arrives while the store is down
        a.store.db.insert, a.store.db.query = real_insert, real_query  # the store is back
        a.round(log_end(tmp_path))
        a.round(log_end(tmp_path))
        assert a.checkpoint == log_end(tmp_path)
        counts = archived_uids(tmp_path)
        assert set(counts) == {uid_of(line) for line in recorded_lines()[:15]} and set(counts.values()) == {1}
        stored = {r["uid"] for r in a.store.db.query(f"SELECT uid FROM {a.store.table('measurements')}")}
        assert stored == set(counts) and Quarantine(tmp_path).entries() == []
    finally:
        a.store.db.insert, a.store.db.query = real_insert, real_query
        a.close()


def test_the_judge_worker_sets_aside_what_fails_and_judges_the_rest(tmp_path):
    lines = recorded_lines()[:12]
    write_log(tmp_path, lines[:3] + [BAD_TIME] + lines[3:])
    bad = uid_of(lines[7])
    real = Judge(load_rules())

    def raising(m):
        if m.measurement_uid == bad:
            raise KeyError("test_keys")
        return real(m)

    batch = judge_batch(raising, tmp_path / "log", Request((0, 0), log_end(tmp_path), 100))
    assert len(batch.judged) == 13 and sum(j is None for j in batch.judged) == 2
    assert [(f.stage, f.uid) for f in batch.failed] == [
        ("decode", "20220226090000.000001_RU_webconnectivity_bad0time0000001"), ("judge", bad)]
    archived = b"".join(zstandard.ZstdDecompressor().stream_reader(frame).read() for frame in batch.frames.values())
    assert bad.encode() not in archived and archived.count(b"\n") == 11


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_health_metric_and_admin_listing_show_what_was_set_aside(tmp_path, process):
    import time

    from fastapi.testclient import TestClient

    from netvigil.observatory.app import create_app

    lines = recorded_lines()[:30]
    write_log(tmp_path, lines[:10] + [BAD_TIME] + lines[10:])
    app = create_app(tmp_path, analysis_process=process, analysis_interval=0.1, admin_token="s3cret-admin")
    with TestClient(app, raise_server_exceptions=False) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and c.get("/api/v1/health").json()["analysed"] < len(lines):
            time.sleep(0.1)
        health = c.get("/api/v1/health").json()
        assert health["quarantined"] == 1 and health["analysis"] == "running"
        assert health["analysed"] == health["measurements"] - health["quarantined"] == len(lines)
        assert "netvigil_quarantined_measurements 1.0" in c.get("/metrics").text
        assert c.get("/api/v1/quarantine").status_code == 401
        assert c.get("/api/v1/quarantine", headers={"Authorization": "Bearer wrong"}).status_code == 403
        page = c.get("/api/v1/quarantine?lines=true", headers={"Authorization": "Bearer s3cret-admin"}).json()
        assert page["count"] == 1
        entry = page["results"][0]
        assert entry["stage"] == "decode" and "measurement_start_time" in entry["reason"]
        assert entry["measurement"] == BAD_TIME.decode()


def test_cli_lists_what_was_set_aside(tmp_path, capsys):
    from netvigil.cli import main

    lines = recorded_lines()[:5]
    write_log(tmp_path, lines[:2] + [BAD_TIME] + lines[2:])
    analyse(tmp_path).close()
    assert main(["quarantine", "--data-dir", str(tmp_path), "--lines"]) == 0
    out = capsys.readouterr().out
    assert "20220226090000.000001_RU_webconnectivity_bad0time0000001" in out and "decode" in out
    assert BAD_TIME.decode() in out
    assert main(["quarantine", "--data-dir", str(tmp_path), "--jsonl"]) == 0
    entry = json.loads(capsys.readouterr().out.splitlines()[0])
    assert entry["stage"] == "decode" and entry["position"]["segment"] == 1
    assert main(["quarantine", "--data-dir", str(tmp_path / "absent")]) == 2
    assert "not a netvigil data directory" in capsys.readouterr().err


def test_through_the_judge_worker_process_too(tmp_path):
    import time

    lines = recorded_lines()[:30]
    write_log(tmp_path, lines[:10] + [BAD_TIME, b"\xff\xfe not json"] + lines[10:])
    a = Analyser(tmp_path, batch=5000, judge_worker=True)
    a.open()
    try:
        deadline = time.monotonic() + 60
        while not a.worker._started() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a.worker.ready
        res = a.round(log_end(tmp_path))
        assert a.worker is not None  # the worker judged this round and is still there
        assert res.analysed == len(lines) and res.quarantined == 2
        assert [e.stage for e in Quarantine(tmp_path).entries()] == ["decode", "decode"]
        counts = archived_uids(tmp_path)
        assert set(counts) == {uid_of(line) for line in lines} and set(counts.values()) == {1}
    finally:
        a.close()


def _fuzz_values():
    from hypothesis import strategies as st

    return st.recursive(
        st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
        | st.sampled_from(["2022-13-45 99:99:99", "0000-00-00 00:00:00", "RU\n", "AS１２３", "", "\x00", "9" * 40]),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
        max_leaves=8)


@pytest.fixture(scope="module")
def fuzz_analyser(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz-analysis")
    mlog = MeasurementLog(data_dir / "log", fsync=False)
    a = Analyser(data_dir, batch=5000)
    a.open()
    yield a, mlog
    a.close()
    mlog.close()


def test_no_line_in_the_log_stops_the_analysis(fuzz_analyser):
    """Whatever an older collector (or a broken disk) left in the log, a round ends, moves the
    checkpoint to the end, and every line is stored or set aside (hypothesis, derandomised)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    a, mlog = fuzz_analyser
    base = json.loads(recorded_lines()[0])
    fields = sorted(base) + ["test_keys.requests", "test_keys.queries", "annotations.service", "probe_ip"]
    counter = iter(range(10**6))

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(changes=st.lists(st.tuples(st.sampled_from(fields), _fuzz_values()), min_size=1, max_size=3),
           raw_tail=st.sampled_from([b"", b"\xff", b"}", b'"']))
    def run(changes, raw_tail):
        m = json.loads(json.dumps(base))
        m["measurement_uid"] = f"20220226090000.{next(counter):06d}_RU_webconnectivity_fuzz0000000000"
        for field, value in changes:
            head, _, key = field.partition(".")
            if key and isinstance(m.get(head), dict):
                m[head][key] = value
            else:
                m[head] = value
        line = json.dumps(m).encode() + raw_tail
        uid = m.get("measurement_uid")
        before = len(a.quarantine.entries())
        mlog.append([line]).result(timeout=30)
        a.round(mlog.end())
        assert a.checkpoint == mlog.end()
        new = a.quarantine.entries()[before:]
        if isinstance(uid, str) and uid.startswith("20220226090000.") and not raw_tail:  # its own uid
            stored = a.store.db.query(f"SELECT count() AS n FROM {a.store.table('measurements')} WHERE uid = '{uid}'")
            assert (len(new), int(stored[0]["n"])) in ((1, 0), (0, 1)), (changes, new)
        else:
            assert len(new) <= 1

    run()
