"""`netvigil outages MEASUREMENTS`: outage vs censorship per network on real lab runs.

tests/data/lab/ holds recorded `netvigil lab run`s (russia-2022: 16 rounds of 30 min, Beeline's
uplink down 10:30-11:30; vpn-then-blocked: Twitter reset from 09:00). tests/signals/data/
lab_outage and lab_ip_drop are 2-round runs (scenarios `outage` and `ip-drop`, the event in
round 1 only), with their labels.jsonl and run.json (cadence 60 min).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netvigil.cli import main

DATA = Path(__file__).parent / "data"
LAB = Path(__file__).resolve().parents[1] / "data" / "lab"


def test_uplink_down_is_an_outage_and_the_control_vantage_is_not(capsys):
    rc = main(["outages", str(LAB / "russia-2022" / "measurements.jsonl.zst")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "buckets of 1800 s" in out  # cadence read from run.json
    assert "RU/AS3216: both" in out and "ZZ/AS64500: none" in out  # Beeline: blocked, then down
    assert "outage from 2022-02-26 10:30:00 to 2022-02-26 11:30:00" in out
    assert "outage calls per (network, bucket) vs labels.jsonl: precision=1.000 recall=1.000" in out


def test_ip_block_is_censorship_not_outage(capsys):
    rc = main(["outages", str(LAB / "vpn-then-blocked" / "measurements.jsonl.zst"), "--format", "jsonl"])
    captured = capsys.readouterr()
    calls = {c["key"]: c for c in map(json.loads, captured.out.splitlines())}
    assert rc == 0
    assert calls["RU/AS65001"]["call"] == "censorship"
    assert calls["RU/AS65001"]["censored_bucket_starts"] and not calls["RU/AS65001"]["outage_bucket_starts"]
    assert "censorship calls per (network, bucket) vs labels.jsonl: precision=1.000 recall=1.000" in captured.err


def test_one_bad_round_is_not_yet_an_outage(capsys):
    """As in the incidents: a span opens after `open_rounds` (2) bad rounds in a row."""
    rc = main(["outages", str(DATA / "lab_outage" / "measurements.jsonl.zst")])
    out = capsys.readouterr().out
    assert rc == 0 and "RU/AS65001: none" in out
    assert "outage calls per (network, bucket) vs labels.jsonl: precision=n/a recall=0.000" in out


def test_step_option_and_bad_labels(tmp_path, capsys):
    bad = tmp_path / "labels.jsonl"
    bad.write_text('{"asn": "AS1", "technique": "outage", "start": "yesterday", "end": "x"}\n')
    rc = main(["outages", str(DATA / "lab_outage" / "measurements.jsonl.zst"), "--step", "1800",
               "--labels", str(bad)])
    captured = capsys.readouterr()
    assert "buckets of 1800 s" in captured.out
    assert rc == 2 and f"{bad}:1" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("content", [b'{"not": "a measurement"}\n', b"{broken json\n"])
def test_no_measurements_is_one_line(tmp_path, capsys, content):
    f = tmp_path / "m.jsonl"
    f.write_bytes(content)
    assert main(["outages", str(f)]) == 1
    err = capsys.readouterr().err
    assert "no measurements to judge" in err and len(err.strip().splitlines()) == 1


def test_cadence_is_inferred_without_run_json():
    from netvigil.cli.signals_measurements import _step_from_times

    assert _step_from_times([0, 1800, 3600, 9000]) == 1800
    assert _step_from_times([0, 5, 1800]) == 1800  # sub-minute jitter is not a cadence
    assert _step_from_times([42]) == 3600
