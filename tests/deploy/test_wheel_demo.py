"""The wheel smoke's demo check (scripts/check_wheel_demo.py) holds for the checkout too: the
replay demo from the repository gives the recorded run's incidents (Twitter, Facebook per
provider, the Beeline outage), read from the store it wrote; and the check names an incident
that is missing. The smoke once said "2 incident(s)" because it counted console lines that
rich had wrapped.

`demo` and `export` run in-process through the entry point's main() (tests/clirun.py): their
subprocess tests are elsewhere (docs/testing.md); the check script runs as the smoke runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.clirun import run_cli
from tests.conftest import REPO

CHECK = REPO / "scripts" / "check_wheel_demo.py"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    demo = run_cli("demo", "--replay", "--no-serve", "--out", str(d / "demo"))
    assert demo.returncode == 0, demo.stderr[-2000:]
    out = d / "incidents.jsonl"
    exp = run_cli("export", "incidents", "--store", str(d / "demo" / "observatory"), "--format", "jsonl",
                   "--out", str(out))
    assert exp.returncode == 0, exp.stderr
    return out


def check(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), str(path)], capture_output=True, text=True, timeout=60)


def test_the_replay_from_the_checkout_gives_the_recorded_incidents(exported):
    r = check(exported)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("3 incident(s), as recorded:")
    assert "twitter in RU" in r.stdout and "facebook in RU" in r.stdout and "all services in RU (outage" in r.stdout


def test_the_check_names_a_missing_incident_and_a_changed_technique(exported, tmp_path):
    lines = exported.read_text().splitlines()
    no_outage = tmp_path / "no_outage.jsonl"
    no_outage.write_text("\n".join(l for l in lines if '"kind":"outage"' not in l.replace(" ", "")) + "\n")
    changed = tmp_path / "changed.jsonl"
    changed.write_text(exported.read_text().replace('"dns.blockpage"', '"tls.reset_after_hello"'))
    a, b = check(no_outage), check(changed)
    assert a.returncode == 1 and "missing:" in a.stderr and "'outage'" in a.stderr
    assert b.returncode == 1 and "dns.blockpage" in b.stderr and "unexpected:" in b.stderr


def test_a_file_that_is_not_an_export_is_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"country": "RU"}\n')
    r = check(bad)
    assert r.returncode != 0 and "bad.jsonl:1: not an exported incident" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    missing = check(tmp_path / "none.jsonl")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
