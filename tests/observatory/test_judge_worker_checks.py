"""The judge worker's cheaper per-line work (issue #13) sets aside the same lines and frames its
answers as before: the indexed-field check is remembered only for fields found good (a bad line
is set aside every time it comes), and an answer written in two parts reads back whole."""

from __future__ import annotations

import io
import json
import time

import msgspec

from netvigil.collector.intake import accept
from netvigil.collector.log import MeasurementLog
from netvigil.collector.quarantine import Quarantined
from netvigil.observatory import judge_worker as jw


def _line(**over) -> bytes:
    m = {"test_name": "web_connectivity", "measurement_start_time": "2022-02-26 06:00:00", "probe_cc": "RU",
         "probe_asn": "AS12389", "input": "https://twitter.com/", "report_id": "r1", "test_keys": {"queries": []}}
    m.update(over)
    return accept(json.dumps(m).encode()).line


def _bad(line: bytes, **over) -> bytes:
    """LINE with fields an older collector let through (the worker must still set it aside)."""
    obj = json.loads(line)
    obj.update(over)
    return json.dumps(obj).encode()


def test_bad_indexed_fields_are_set_aside_every_time_good_ones_pass(tmp_path):
    good = _line()
    bad_cc = _bad(good, probe_cc="ru", measurement_uid="20220226060000.000001_RU_webconnectivity_0123456789abcdef")
    future = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 3 * 86400))
    bad_time = _bad(good, measurement_start_time=future,
                    measurement_uid="20220226060000.000002_RU_webconnectivity_0123456789abcdef")
    lines = [good, bad_cc, good, bad_time, bad_cc, _line(probe_asn="AS8359"), bad_time, good]
    mlog = MeasurementLog(tmp_path / "log", fsync=False)
    mlog.append(lines).result()
    end = mlog.end()
    mlog.close()
    jw._GOOD.clear()
    for _ in range(2):  # the second pass: every good key is remembered now
        got = [m for _, m, _ in jw.read_log_measurements(tmp_path / "log", (0, 0), end, 100)]
        aside = [i for i, m in enumerate(got) if isinstance(m, Quarantined)]
        assert aside == [1, 3, 4, 6]
        assert all("probe_cc" in got[i].reason for i in (1, 4))
        assert all("measurement_start_time" in got[i].reason for i in (3, 6))
    assert len(jw._GOOD) == 2  # the two good (time, country, network, test)


def test_an_answer_written_in_two_parts_reads_back_whole():
    batch = jw.Batch((1, 0), (1, 99), [None] * 3, {1: b"x" * 70_000}, {"2022-02-26": b"\x28\xb5" * 50_000}, [])
    out = io.BytesIO()
    jw._write(out, jw.Ready("v1"))
    jw._write(out, batch)
    inp = io.BytesIO(out.getvalue())
    assert jw._answers.decode(jw._read(inp)) == jw.Ready("v1")
    assert jw._answers.decode(jw._read(inp)) == batch
    assert jw._read(inp) is None
    assert msgspec.msgpack.decode(out.getvalue()[4:4 + int.from_bytes(out.getvalue()[:4], "big")]) == ["ready", "v1"]
