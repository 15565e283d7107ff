"""OONI files: every format streams, bad records are reported with file:line and skipped,
corrupt or truncated compressed files stop with a one-line error naming the file."""

from __future__ import annotations

import gzip
import json

import pytest
import zstandard

from netvigil.errors import IngestError, UsageError
from netvigil.ingest.ooni import IngestReport, read_measurements
from netvigil.analysis.verdicts.observations_csv import read_observation_verdicts


@pytest.fixture
def lines(third_party):
    path = third_party / "ooni-explorer-fixtures" / "raw_measurements.jsonl.gz"
    return gzip.decompress(path.read_bytes()).splitlines()


def test_all_formats_read_the_same(tmp_path, lines):
    body = b"\n".join(lines) + b"\n"
    (tmp_path / "a.jsonl").write_bytes(body)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(body))
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(body))
    (tmp_path / "d.json").write_bytes(lines[0])
    counts = {}
    for name in ("a.jsonl", "b.jsonl.gz", "c.jsonl.zst", "d.json"):
        rep = IngestReport()
        counts[name] = [m.report_id for m in read_measurements([tmp_path / name], rep)]
        assert rep.skipped == 0
    assert counts["a.jsonl"] == counts["b.jsonl.gz"] == counts["c.jsonl.zst"]
    assert len(counts["a.jsonl"]) == len(lines) and len(counts["d.json"]) == 1


def test_bad_records_named_by_line_and_skipped(tmp_path, lines):
    bad = [lines[0], b"{not json", b'{"test_name": 5}', b"", lines[1], b"[1,2]", lines[2]]
    p = tmp_path / "mixed.jsonl"
    p.write_bytes(b"\n".join(bad) + b"\n")
    rep = IngestReport()
    got = list(read_measurements([p], rep))
    assert len(got) == 3 and rep.skipped == 3 and rep.read == 3
    assert [e.split(":")[1] for e in rep.errors] == ["2", "3", "6"]
    assert "invalid JSON" in rep.errors[0] and "not a measurement" in rep.errors[1]
    assert "3 measurements read from 1 file(s), 3 bad record(s) skipped" == rep.summary()


@pytest.mark.parametrize("suffix,compress", [(".jsonl.gz", gzip.compress), (".jsonl.zst", lambda b: zstandard.ZstdCompressor().compress(b))])
def test_truncated_compressed_file_says_where(tmp_path, lines, suffix, compress):
    data = compress(b"\n".join(lines * 20) + b"\n")
    p = tmp_path / f"cut{suffix}"
    p.write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(IngestError) as exc:
        for m in read_measurements([p]):
            got.append(m)
    assert str(p) in str(exc.value) and "truncated" in str(exc.value)
    assert len(got) > 0  # what came before was read


def test_garbage_file_and_missing_file(tmp_path):
    p = tmp_path / "noise.jsonl.gz"
    p.write_bytes(b"\x00\xffnot gzip at all" * 10)
    with pytest.raises(IngestError, match="noise.jsonl.gz"):
        list(read_measurements([p]))
    with pytest.raises(UsageError, match="no such file"):
        list(read_measurements([tmp_path / "absent.jsonl"]))


def test_hostile_json_nesting_is_a_bad_record_not_a_crash(tmp_path, lines):
    p = tmp_path / "deep.jsonl"
    deep = b'{"test_name":"x","measurement_start_time":"2020-01-01 00:00:00","test_keys":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    p.write_bytes(deep + b"\n" + lines[0] + b"\n")
    rep = IngestReport()
    assert len(list(read_measurements([p], rep))) == 1
    assert rep.skipped == 1 and rep.errors[0].startswith(f"{p}:1:")


def test_observation_csv_bad_rows_and_header(tmp_path):
    p = tmp_path / "obs.csv"
    p.write_text("measurement_uid,probe_asn,probe_cc,measurement_start_time,ip,tcp_failure,failure_class\n"
                 "u1,AS1,KE,2023-11-01 05:10:00,1.2.3.4,,ok\n"
                 "u1,AS1,KE,2023-11-01 05:10:00,1.2.3.5,generic_timeout_error,tcp\n"
                 "u2,AS1,KE,not-a-time,1.2.3.4,,ok\n"
                 "u3,AS1,KE,2023-11-01 05:20:00,1.2.3.4,generic_timeout_error,tcp\n")
    rep = IngestReport()
    vs = {v.measurement_uid: v for v in read_observation_verdicts(p, rep)}
    assert set(vs) == {"u1", "u3"} and rep.skipped == 1 and rep.errors[0].startswith(f"{p}:4:")
    assert vs["u1"].technique == "tcp.ip_blocked"  # half the endpoints fail
    assert vs["u3"].klass == "tcp"
    q = tmp_path / "other.csv"
    q.write_text("a,b\n1,2\n")
    with pytest.raises(IngestError, match="missing column"):
        list(read_observation_verdicts(q))


def test_stream_does_not_hold_the_file(tmp_path, lines):
    """Reading is lazy: the first record arrives before the file's end is parsed."""
    p = tmp_path / "big.jsonl"
    p.write_bytes((b"\n".join(lines) + b"\n") * 50 + b"{broken\n")
    it = read_measurements([p], IngestReport())
    first = next(it)
    assert first.test_name
    json.dumps(first.annotations)
