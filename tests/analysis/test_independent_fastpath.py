"""`evaluate --ooni-fastpath`: netvigil against OONI's own anomaly/confirmed flags (real data)."""

from __future__ import annotations

import gzip
import json

import pytest

from netvigil.evaluate.fastpath import evaluate_fastpath, fingerprint_call, fingerprint_scopes
from netvigil.analysis.rules import load_rules
from netvigil.errors import UsageError
from tests.clirun import run_cli


@pytest.fixture(scope="module")
def meta(third_party):
    return third_party / "ooni-explorer-fixtures" / "measurement_meta.jsonl.gz"


@pytest.fixture(scope="module")
def table(third_party):
    return third_party / "ooni-backend-fastpath-table-sample" / "fastpath_sample.csv"


def test_every_published_raw_measurement_is_judged_and_tabled(meta):
    res = evaluate_fastpath(meta)
    assert res.report.read == len(res.rows) == 28 and res.report.skipped == 0
    assert sum(res.judged.pairs.values()) == 28
    by_uid = {r["uid"]: r for r in res.rows}
    # the RU block page OONI confirmed (rutor.org, AS42668): netvigil finds the block page too
    rutor = by_uid["01202003039e13e3e38be1918d3a64c2ec27ea22"]
    assert (rutor["ooni"], rutor["class"], rutor["technique"], rutor["confirmed"]) == \
        ("confirmed", "http", "http.blockpage", True)
    # netvigil confirms exactly what OONI confirms on this set
    assert (res.confirmed.tp, res.confirmed.fp, res.confirmed.fn) == (1, 0, 0)
    # the documented disagreement classes (docs/evaluation.md) are what the run gives
    ipv6_only = by_uid["20230307142542.625294_US_webconnectivity_9215f30cf2412f49"]
    assert (ipv6_only["ooni"], ipv6_only["class"]) == ("ok", "tcp")
    telegram_ru = by_uid["20221109225810.435617_RU_telegram_ecbc73cacd8ea566"]
    assert (telegram_ru["ooni"], telegram_ru["class"]) == ("anomaly", "ok")
    text = "\n".join(res.lines())
    assert "confusion (rows OONI flag, columns netvigil class)" in text


def test_fastpath_rows_alone_are_compared_through_their_fingerprints(table):
    res = evaluate_fastpath(table)
    assert res.report.read == 1081 and not res.rows
    assert sum(res.table_only.values()) == 1081
    pairs = res.fingerprints.pairs
    # every row OONI confirmed matched a fingerprint netvigil's rule data holds as a block page ...
    assert pairs[("confirmed", "blockpage")] == sum(n for (e, _), n in pairs.items() if e == "confirmed") == 18
    # ... and no row OONI left unconfirmed matched one (its matches are false positives or vague)
    assert all(n == 0 for (e, p), n in pairs.items() if p == "blockpage" and e != "confirmed")
    assert pairs[("anomaly", "vague")] == 5  # 0.0.0.0 / 127.0.0.1 DNS answers (scope vbw)


def test_fingerprint_call_takes_the_strongest_known_meaning():
    scopes = fingerprint_scopes(load_rules())
    assert scopes["cl.dns_nat_ir_inject_1"] == scopes["ooni.ir_4"] == "nat"  # other_names are aliases
    assert fingerprint_call(["cp.fp_x_redirect_just", "ooni.ir_4"], scopes) == "blockpage"
    assert fingerprint_call(["cp.fp_x_redirect_just"], scopes) == "false_positive"
    assert fingerprint_call(["no.such_fp"], scopes) == "unknown"
    assert fingerprint_call([], scopes) == "none"


def test_bad_rows_are_named_and_skipped_the_rest_kept(tmp_path, meta):
    good = gzip.open(meta, "rt", encoding="utf-8").readline()
    p = tmp_path / "meta.jsonl"
    p.write_text("{not json\n" + json.dumps({"measurement_uid": "x", "anomaly": "maybe"}) + "\n[1]\n" + good)
    res = evaluate_fastpath(p)
    assert res.report.read == 1 and res.report.skipped == 3 and len(res.rows) == 1
    assert res.report.errors[0].startswith(f"{p}:1: not valid JSON")
    assert "anomaly is 'maybe', not a boolean" in res.report.errors[1] and f"{p}:2" in res.report.errors[1]
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text("measurement_uid,test_name\nx,web_connectivity\n")
    with pytest.raises(UsageError, match="not a fastpath table CSV"):
        evaluate_fastpath(csv_file)
    with pytest.raises(UsageError, match="no such file"):
        evaluate_fastpath(tmp_path / "absent.csv")


def test_cli_prints_the_table_and_json(table):
    r = run_cli("evaluate", "--ooni-fastpath", str(table), "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["read"] == 1081 and ["confirmed", "blockpage", 18] in out["fingerprints"]
    r = run_cli("evaluate", "--ooni-fastpath", str(table), "--acsac", "x")
    assert r.returncode == 2 and "exactly one" in r.stderr and "Traceback" not in r.stderr


def test_fastpath_fixtures_with_the_scores_oonis_own_tests_assert(third_party):
    res = evaluate_fastpath(third_party / "ooni-backend-fastpath-fixtures" / "fastpath_scored.jsonl.gz")
    assert len(res.rows) == 32 and res.report.skipped == 0
    # both IR DNS block pages OONI confirms, netvigil confirms; it confirms nothing else
    assert (res.confirmed.tp, res.confirmed.fp, res.confirmed.fn) == (2, 0, 0)
    by = {r["uid"]: (r["ooni"], r["class"], r["technique"]) for r in res.rows}
    assert by["web_connectivity_ir_fp.json"] == ("confirmed", "dns", "dns.bogon")
    # documented disagreement classes: services with their own CA, OONI's helper down
    assert by["signal_2627.json"] == ("failure", "tls", "tls.mitm")
    assert by["riseupvpn.json"] == ("ok", "tls", "tls.mitm")
    assert by["http_header_field_manipulation_3.json"] == ("failure", "http", "http.failure")


def test_a_directory_reads_its_fastpath_records_and_notes_the_other_files(third_party, tmp_path, meta, table):
    import shutil

    shutil.copy(meta, tmp_path / meta.name)
    shutil.copy(table, tmp_path / table.name)
    shutil.copy(third_party / "ooni-backend-fastpath-fixtures" / "fastpath_scored.jsonl.gz", tmp_path)
    (tmp_path / "windows.csv").write_text("start_utc,end_utc\n2023-11-01 05:00,2023-11-01 08:00\n")
    (tmp_path / "measurements.jsonl").write_text('{"test_name": "web_connectivity", "test_keys": {}}\n')
    res = evaluate_fastpath(tmp_path)
    assert res.report.read == 1081 + 28 + 32 and len(res.rows) == 28 + 32
    assert (res.confirmed.tp, res.confirmed.fp, res.confirmed.fn) == (3, 0, 0)
    assert any("windows.csv:1: not a fastpath table CSV" in e for e in res.report.errors)
    assert any("measurements.jsonl:1: no 'anomaly' flag" in e for e in res.report.errors)
