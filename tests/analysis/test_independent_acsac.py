"""`evaluate --acsac`: netvigil's signal detector on independent daily counts (Russia 2022)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from netvigil.evaluate.acsac import evaluate_acsac, load_daily_rules, read_series
from netvigil.errors import IngestError, UsageError
from tests.clirun import run_cli


@pytest.fixture(scope="module")
def acsac(third_party) -> Path:
    return third_party / "acsac-censorship-event-detection"


def _onsets(res, series):
    return {o.event.id: o for o in res.onsets if o.series == series}


def test_russia_2022_onsets_as_docs_evaluation_reports_them(acsac):
    res = evaluate_acsac(acsac)
    assert set(res.days) == {"ooni: dns+http+tls", "ooni: dns", "ooni: http", "ooni: tls",
                             "censoredplanet: http", "censoredplanet: https"}
    dns = _onsets(res, "ooni: dns")
    assert (dns["ru-2022-twitter-restricted"].flagged, dns["ru-2022-twitter-restricted"].lag_days) == ("2022-02-27", 1)
    assert (dns["ru-2022-facebook-blocked"].flagged, dns["ru-2022-facebook-blocked"].lag_days) == ("2022-03-05", 1)
    # the TLS share had risen in October 2021 and never came back: one interval, no new onset
    tls = _onsets(res, "ooni: tls")
    assert all(o.flagged is None and o.inside_since == "2021-10-01" for o in tls.values())
    # the all-anomalies share does not move enough to be flagged
    assert all(o.flagged is None for o in _onsets(res, "ooni: dns+http+tls").values())
    assert res.rule_id == "evaluate.daily.anomaly_share.rise"


def _write(path: Path, rows: list[tuple[str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fh.write(",date,measurements,ok,anomalies,ratio\n")
        for i, (d, share) in enumerate(rows):
            n = 100_000
            fh.write(f"{i},{d},{n},{n - round(n * share)},{round(n * share)},{share}\n")


def test_the_rule_flags_a_step_on_its_day_and_nothing_in_noise(tmp_path):
    rng = random.Random(7)
    start = date(2022, 1, 1)
    days = [(start + timedelta(days=i)).isoformat() for i in range(90)]
    flat = [(d, 0.01 * (1 + rng.uniform(-0.1, 0.1))) for d in days]
    _write(tmp_path / "quiet" / "censoredplanet" / "http" / "http-data-ru.csv", flat)
    quiet = evaluate_acsac(tmp_path / "quiet")
    assert quiet.intervals["censoredplanet: http"] == []
    step = [(d, v * (3 if i >= 60 else 1)) for i, (d, v) in enumerate(flat)]
    _write(tmp_path / "step" / "censoredplanet" / "http" / "http-data-ru.csv", step)
    ivs = evaluate_acsac(tmp_path / "step").intervals["censoredplanet: http"]
    assert [iv.onset[:10] for iv in ivs] == [days[60]]


def test_bad_files_say_what_and_where(tmp_path):
    with pytest.raises(UsageError, match="no ooni/ooni-data-ru.csv"):
        read_series(tmp_path)
    bad = tmp_path / "censoredplanet" / "http" / "http-data-ru.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text(",date,measurements,ok,anomalies,ratio\n0,2022-01-01,lots,1,1,0.1\n")
    with pytest.raises(IngestError, match=r"http-data-ru.csv:2: column 'measurements' is 'lots', not a count"):
        read_series(tmp_path)
    bad.write_text(",date,measurements,ok,anomalies,ratio\n0,2022-01-02,9,8,1,0.1\n1,2022-01-01,9,8,1,0.1\n")
    with pytest.raises(IngestError, match=r":3: dates are not increasing"):
        read_series(tmp_path)


def test_rule_and_events_are_versioned_data():
    rules = load_daily_rules()
    assert rules.version and rules.rule.polarity == "rise"
    assert [e.onset for e in rules.events] == ["2022-02-25", "2022-02-26", "2022-03-04"]


@pytest.mark.parametrize("value", ["-5", "inf", "nan", ""])
def test_a_count_must_be_a_finite_non_negative_number(tmp_path, value):
    p = tmp_path / "censoredplanet" / "https" / "https-data-ru.csv"
    p.parent.mkdir(parents=True)
    p.write_text(f",date,measurements,ok,anomalies,ratio\n0,2022-01-01,10,9,{value},0.1\n")
    with pytest.raises(IngestError, match=r"https-data-ru.csv:2: column 'anomalies' is .*not a count"):
        read_series(tmp_path)


def test_cli_prints_the_onsets(acsac):
    r = run_cli("evaluate", "--acsac", str(acsac))
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("ru-2022-facebook-blocked") and "ooni: dns " in x)
    assert "2022-03-05" in line and "+1 d" in line
