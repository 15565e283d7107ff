"""`netvigil outages FILE`: what a user sees, including one-line errors for bad files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netvigil.cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def monash(third_party: Path) -> Path:
    return third_party / "monash-ip-observatory"


def test_iran_table_with_scores(monash, capsys):
    rc = main(["outages", str(monash / "irn-2019-11-11_gif.csv"),
               "--windows", str(DATA / "iran_2019_windows.csv")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "IRN (national)  2019-11-16 17:30:00" in out and "ongoing" in out
    assert "region-hour calls vs iran_2019_windows.csv: precision=" in out
    assert "national calls vs iran_2019_windows.csv" in out and "onset error +45 min" in out


def test_region_filter_and_jsonl(monash, capsys):
    rc = main(["outages", str(monash / "ven-2019-07-22_gif.csv"), "--region", "zulia",
               "--format", "jsonl"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and lines
    rows = [json.loads(line) for line in lines]
    assert {r["key"] for r in rows} == {"VEN/Zulia"}
    assert rows[0]["onset"].startswith("2019-07-22") and rows[0]["rule_id"]


def test_mrt_prints_visibility_changes(third_party, capsys):
    rc = main(["outages", str(third_party / "mrtparse-samples" / "bird_bgp")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "peers 1 -> 0  (session_down)" in out
    assert "AS65000  2017-02-11 09:33:00" in out


@pytest.mark.parametrize("content, message", [
    (b"a,b\n1,2\n", "bad.csv:1: not a Monash IP Observatory CSV (columns 'a,b')"),
    (b"iso,id_1,name_1,time_e,time_e_str,lat,lon,connectivity\nIRN,1,A,1,x,1,1,oops\n",
     "bad.csv:2: connectivity is not a number"),
])
def test_bad_file_is_one_line_error(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    rc = main(["outages", str(bad)])
    err = capsys.readouterr().err
    assert rc == 1
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_usage_errors(monash, capsys):
    assert main(["outages", str(monash / "irn-2019-11-11_gif.csv"), "--format", "xml"]) == 2
    assert main(["outages", str(monash / "irn-2019-11-11_gif.csv"), "--region", "Narnia"]) == 2
    assert main(["outages", "/nonexistent/file.csv"]) == 2
    err = capsys.readouterr().err
    assert "--format must be one of" in err and "no region matches Narnia" in err
    assert "no such file" in err and "Traceback" not in err


def test_truncated_mrt_from_the_real_command(third_party, tmp_path):
    bad = tmp_path / "cut.mrt"
    bad.write_bytes((third_party / "mrtparse-samples" / "quagga_bgp").read_bytes()[:100])
    exe = Path(sys.executable).parent / "netvigil"
    proc = subprocess.run([str(exe), "outages", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("netvigil: error: ") and "record 3 at byte 72" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_has_an_example(capsys):
    assert main(["outages", "--help"]) == 0
    assert "Example:" in capsys.readouterr().out
