"""`evaluate --ooni-im`: real OONI telegram and whatsapp measurements judged against the
expected verdicts written down (with reasons) in im_expected.toml."""

from __future__ import annotations

import re

import pytest

from netvigil.evaluate.im import evaluate_im, load_expected
from netvigil.evaluate.ooni_records import read_raw_measurements
from netvigil.errors import ConfigError, UsageError
from netvigil.ingest.ooni import IngestReport
from tests.clirun import run_cli


@pytest.fixture(scope="module")
def sources(third_party):
    return [third_party / "ooni-backend-fastpath-fixtures" / "telegram_nourl.json",
            third_party / "ooni-backend-fastpath-fixtures" / "whatsapp.json",
            third_party / "ooni-explorer-fixtures" / "measurement_meta.jsonl.gz",
            third_party / "ooni-spec-examples" / "examples-telegram-whatsapp.jsonl"]


def test_every_measurement_gets_its_expected_verdict(sources):
    res = evaluate_im(sources)
    assert len(res.rows) == len(load_expected()) == 8
    assert not res.missing and not res.unlabelled
    misses = [(r["where"], r["expected"], r["class"], r["technique"]) for r in res.rows if not r["ok"]]
    assert misses == []
    by_where = {r["where"][:21]: r for r in res.rows}
    assert by_where["JP AS55392, 2022-11-0"]["technique"] == "dns.bogon"
    # OONI's probe said "blocked" for these two; their network steps say otherwise (why in the data file)
    assert by_where["RU AS8402, 2022-11-09"]["class"] == by_where["IE AS6830, 2022-12-02"]["class"] == "ok"


def test_what_ooni_says_is_what_the_measurements_say(sources):
    """The `ooni_says` quoted for each measurement are its real test_keys (no paraphrase drift)."""
    expected = load_expected()
    seen = 0
    for m, _ in read_raw_measurements(sources, IngestReport()):
        e = expected.get(m.report_id)
        if e is None or m.test_name not in ("telegram", "whatsapp"):
            continue
        assert m.test_name == e["test_name"]
        for key, value in re.findall(r"(\w+)=(\w+)", e["ooni_says"]):
            got = m.test_keys.get(key)
            assert str(got).lower() == value, (m.report_id, key, got, value)
        seen += 1
    assert seen >= 8


def test_a_wrong_expectation_is_reported_as_a_miss(sources):
    expected = load_expected()
    us = next(k for k, e in expected.items() if e["where"].startswith("US AS7018"))
    expected[us] = dict(expected[us], expected="dns")
    res = evaluate_im(sources, expected=expected)
    assert [r["ok"] for r in res.rows].count(False) == 1
    assert "<- MISS" in "\n".join(res.lines())


def test_bad_inputs(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("version = '1'\n[[measurement]]\nreport_id = 'r'\n")
    with pytest.raises(ConfigError, match="needs test_name"):
        load_expected(bad)
    with pytest.raises(UsageError, match="no such file"):
        evaluate_im([tmp_path / "absent.jsonl"])
    broken = tmp_path / "m.jsonl"
    broken.write_text('{"test_name": "telegram"\n')
    res = evaluate_im([broken])
    assert res.report.skipped == 1 and res.report.errors[0].startswith(f"{broken}:1: not valid JSON")


def test_cli(sources):
    args = [a for p in sources for a in ("--ooni-im", str(p))]
    r = run_cli("evaluate", *args)
    assert r.returncode == 0, r.stderr
    assert "netvigil: 8/8 as expected" in r.stdout
