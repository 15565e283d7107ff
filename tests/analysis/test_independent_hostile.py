"""Hostile files given to the independent-data evaluations: a named error or skipped records,
never a traceback (derandomised fuzzers with a fixed budget)."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netvigil.evaluate.acsac import read_series
from netvigil.evaluate.ooni_records import read_ooni_records, read_raw_measurements
from netvigil.errors import NetvigilError
from netvigil.ingest.ooni import IngestReport

FUZZ = settings(max_examples=60, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

CSV_HEAD = b"measurement_uid,test_name,anomaly,confirmed,msm_failure,scores\n"
ACSAC_HEAD = b",date,measurements,ok,anomalies,ratio\n"
cells = st.sampled_from([b"", b"t", b"f", b"x", b"1e999", b"nan", b"-1", b"\"", b"{}", b"\x00", b"2022-02-30",
                         b"2022-01-01", b"\\N", b"\xff\xfe", b'"{""fingerprints"": 3}"', b"\n", b","])
rows = st.lists(st.lists(cells, min_size=1, max_size=8).map(lambda c: b",".join(c) + b"\n"), max_size=12)


def _try(fn):
    try:
        fn()
    except NetvigilError:
        pass  # a named error is the allowed failure


@FUZZ
@given(rows)
def test_fastpath_csv(body):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.csv"
        p.write_bytes(CSV_HEAD + b"".join(body))
        _try(lambda: list(read_ooni_records(p, IngestReport())))


@FUZZ
@given(st.binary(max_size=400), st.booleans())
def test_meta_and_measurement_lines(data, zipped):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / ("m.jsonl.gz" if zipped else "m.jsonl")
        p.write_bytes(gzip.compress(data)[: max(10, len(data) // 2)] if zipped and data else data)
        report = IngestReport()
        _try(lambda: list(read_ooni_records(p, report)))
        _try(lambda: list(read_raw_measurements([p], IngestReport())))


@FUZZ
@given(rows)
def test_acsac_csv(body):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "censoredplanet" / "http" / "http-data-ru.csv"
        p.parent.mkdir(parents=True)
        p.write_bytes(ACSAC_HEAD + b"".join(body))
        _try(lambda: read_series(Path(d)))


def test_deep_nesting_is_a_skipped_record(tmp_path):
    p = tmp_path / "deep.jsonl"
    p.write_text("[" * 100_000 + "\n" + '{"raw_measurement": 1}\n')
    report = IngestReport()
    assert list(read_raw_measurements([p], report)) == []
    assert report.skipped == 2 and report.errors[0].startswith(f"{p}:1: not valid JSON")
