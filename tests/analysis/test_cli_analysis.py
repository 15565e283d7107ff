"""`netvigil analyse / incidents / evaluate / rebuild` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import msgspec

from tests.analysis.factory import at, round_of
from tests.clirun import run_cli as run


def lab_file(tmp_path):
    p = tmp_path / "m.jsonl"
    with p.open("w") as fh:
        for r in range(12):
            for m in round_of(at(r), techniques={"twitter": "tls.reset_after_hello" if 3 <= r < 8 else None}):
                fh.write(json.dumps(msgspec.to_builtins(m)) + "\n")
    return p


def test_analyse_jsonl_has_the_documented_fields(tmp_path):
    r = run("analyse", str(lab_file(tmp_path)), "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 24
    need = {"measurement_uid", "measurement_start_time", "probe_cc", "probe_asn", "service", "input", "domain", "class",
            "technique", "confidence", "rule_ids", "rules_version", "rate_bps"}
    assert all(need <= set(row) for row in rows)
    assert sum(row["technique"] == "tls.reset_after_hello" for row in rows) == 5
    assert "24 measurements read" in r.stderr


def test_incidents_jsonl_and_store_round_trip(tmp_path):
    f = lab_file(tmp_path)
    r = run("incidents", str(f), "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    incs = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(incs) == 1
    i = incs[0]
    assert {"id", "country", "service", "kind", "start", "end", "networks", "circumvention", "evidence"} <= set(i)
    assert (i["service"], i["kind"], i["start"], i["end"]) == ("twitter", "censorship", at(3), at(8))
    store = tmp_path / "store"
    r = run("analyse", str(f), "--store", str(store), "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    assert "24 new measurement(s)" in r.stderr
    r = run("incidents", "--store", str(store), "--format", "jsonl")
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == [i["id"]]
    r = run("rebuild", "--store", str(store))
    assert r.returncode == 0 and "24 measurement(s), 1 incident(s)" in r.stdout


def test_evaluate_qa_prints_scores(third_party):
    r = run("evaluate", "--ooni-qa", str(third_party / "ooni-probe-cli-minipipeline" / "generated"))
    assert r.returncode == 0, r.stderr
    assert "netvigil: 50/50 class correct" in r.stdout and "OONI classic analysis" in r.stdout


def test_one_line_errors(tmp_path):
    for args, text in [(("analyse", str(tmp_path / "nope.jsonl")), "no such file"),
                       (("analyse",), "give measurement FILES"),
                       (("analyse", "x", "--format", "xml"), "unknown format"),
                       (("evaluate",), "exactly one"),
                       (("evaluate", "--ooni-observations", str(tmp_path / "a.csv")), "--windows"),
                       (("rebuild", "--store", str(tmp_path)), "no observatory store"),
                       (("incidents", "--store", str(tmp_path / "none")), "no observatory store")]:
        r = run(*args)
        assert r.returncode != 0
        assert text in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1  # in-process: a traceback would have raised


def test_error_exit_status_from_the_real_command(tmp_path):
    """One subprocess: the installed command exits non-zero with one line on a user's mistake."""
    r = subprocess.run([sys.executable, "-m", "netvigil", "analyse", str(tmp_path / "nope.jsonl")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "no such file" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_help_has_examples():
    for cmd in ("analyse", "incidents", "evaluate", "rebuild"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and "Example:" in r.stdout
