"""Real outages in the Monash IP Observatory data, against documented windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from netvigil.analysis.outages.detector import detect_outages, national_series
from netvigil.analysis.outages.scoring import load_windows, score
from netvigil.model.times import parse_utc
from netvigil.errors import IngestError
from netvigil.ingest.monash import read_monash

WINDOWS = Path(__file__).parent / "data"
H = 3600


@pytest.fixture(scope="module")
def monash(third_party: Path) -> Path:
    return third_party / "monash-ip-observatory"


def run(path: Path):
    series = read_monash(path)
    return series, [iv for s in series for iv in detect_outages(s)]


def test_iran_2019_national_shutdown(monash):
    series, intervals = run(monash / "irn-2019-11-11_gif.csv")
    assert len(series) == 73 and series[0].signal == "connectivity"
    nat = national_series(series, "IRN (national)")
    (iv,) = detect_outages(nat)
    documented = parse_utc("2019-11-16 16:45")  # traceroutes into Iran collapse (Oracle)
    assert abs(iv.onset_ts - documented) <= 2 * H
    assert iv.detected_ts - documented <= 2 * H
    assert iv.end is None  # restoration began 21 Nov, after the series ends
    assert iv.depth > 0.9
    wins = load_windows(WINDOWS / "iran_2019_windows.csv")
    sc = score(series, intervals, wins)
    assert sc.precision >= 0.95 and sc.recall >= 0.9
    # Before the protests (15 Nov) at most a couple of short county blips in 73 x 4.5 days.
    early = [iv for iv in intervals if iv.onset_ts < parse_utc("2019-11-15 00:00")]
    assert len(early) <= 2 and all(iv.points <= 5 for iv in early)
    # Ahvaz (Khuzestan), where the first cuts were reported (Article 19), goes down the
    # evening before the national shutdown.
    ahvaz = [iv for iv in intervals if iv.key.endswith("/Ahvaz")]
    assert ahvaz and ahvaz[0].onset_ts < parse_utc("2019-11-16 06:00")


def test_venezuela_2019_blackout(monash):
    series, intervals = run(monash / "ven-2019-07-22_gif.csv")
    nat = national_series(series, "VEN (national)")
    (iv,) = detect_outages(nat)
    documented = parse_utc("2019-07-22 20:40")  # 16:40 VET, AFP/EFE
    assert abs(iv.detected_ts - documented) <= 1 * H
    assert abs(iv.onset_ts - documented) <= 2 * H
    assert iv.end_ts is not None and parse_utc("2019-07-23 12:00") <= iv.end_ts <= parse_utc("2019-07-24 12:00")
    sc = score(series, intervals, load_windows(WINDOWS / "venezuela_2019_windows.csv"))
    assert sc.precision >= 0.9 and sc.recall >= 0.6
    assert len({iv.key for iv in intervals}) >= 10  # most of the 13 states


def test_myanmar_2021_nightly_shutdowns_are_silence(monash):
    series, intervals = run(monash / "mmr-2021-04-09_Bago.csv")
    assert [s.signal for s in series] == ["volume"]
    wins = load_windows(WINDOWS / "myanmar_2021_windows.csv")
    sc = score(series, intervals, wins)
    assert len(sc.onset_errors_min) >= 70  # of the 72 documented nights
    assert sc.precision >= 0.9 and sc.recall >= 0.9
    # No nightly call after the curfew ended (28 April), when nights look like days.
    assert not [iv for iv in intervals if iv.onset_ts > parse_utc("2021-04-28 00:00") and iv.points > 3]


def test_ukraine_2021_latency_has_no_national_outage(monash):
    series, intervals = run(monash / "ukr-2022-01-18_border-regions.csv")
    assert len(series) == 10 and series[0].signal == "latency" and series[0].step == 3 * H
    assert intervals == []


HEADER = "iso,id_1,name_1,time_e,time_e_str,lat,lon,connectivity\n"


@pytest.mark.parametrize("text, message, line", [
    (HEADER + "IRN,1,A,1573430400,x,1,1,100\nIRN,1,A,1573434000,x,1,1,abc\n", "not a number", 3),
    (HEADER + "IRN,1,A,1573430400,x,1,1\n", "fields, expected", 2),
    (HEADER + "IRN,1,A,1573430400,x,1,1,400\n", "outside 0..100", 2),
    (HEADER + "XXX,1,A,1573430400,x,1,1,100\n", "no UTC offset known", 2),
    (HEADER + "IRN,1,A,1573430400,x,1,1,100\nIRN,1,A,1573430400,x,1,1,90\n", "duplicate time", 3),
    ("a,b\n1,2\n", "not a Monash", 1),
    ("", "empty file", 1),
    ("ip_hash,iso,name_0,name_1,name_2,isp_name,owner_name,time_local_str,time_local_hr,rtt\n"
     "1,MMR,M,B,P,i,o,yesterday,1,100\n", "time_local_str", 2),
])
def test_bad_files_name_file_and_line(tmp_path, text, message, line):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(IngestError, match=message) as exc:
        read_monash(bad)
    assert f"{bad}:{line}" in str(exc.value)


def test_binary_file_is_an_ingest_error(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage" * 50)
    with pytest.raises(IngestError, match="not UTF-8"):
        read_monash(bad)


def test_compressed_csv_reads_the_same_and_truncation_is_reported(monash, tmp_path):
    import bz2
    import gzip

    original = (monash / "ven-2019-07-22_gif.csv").read_bytes()
    plain = read_monash(monash / "ven-2019-07-22_gif.csv")
    for name, data in (("v.csv.gz", gzip.compress(original)), ("v.csv.bz2", bz2.compress(original))):
        f = tmp_path / name
        f.write_bytes(data)
        got = read_monash(f)
        assert [(s.key, s.times, s.values) for s in got] == [(s.key, s.times, s.values) for s in plain]
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(original)[:5000])
    with pytest.raises(IngestError, match="corrupt compressed file") as exc:
        read_monash(cut)
    assert str(cut) in str(exc.value)
