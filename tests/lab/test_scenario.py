"""Scenario files and labels: no root needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netvigil.errors import ConfigError
from netvigil.lab.labels import build_labels
from netvigil.lab.scenario import TECHNIQUES, combine, list_scenarios, load_scenario, parse_scenario
from tests.clirun import run_cli

RUSSIA = (list_scenarios()[0].parent / "russia-2022.toml").read_text()


def netvigil(*args: str) -> subprocess.CompletedProcess:
    """The real command: the lab family's one subprocess (its entry point and exit status)."""
    return subprocess.run([sys.executable, "-m", "netvigil", *args], capture_output=True, text=True, timeout=60)


def test_every_packaged_scenario_loads():
    names = {p.stem for p in list_scenarios()}
    assert {"russia-2022", "kenya-2023"} <= names
    techniques = set()
    for p in list_scenarios():
        s = load_scenario(p)
        assert s.name == p.stem and s.rounds >= 2 and s.isps
        techniques |= {pol.technique for isp in s.isps for pol in isp.policies}
    assert techniques == set(TECHNIQUES)  # one small scenario (at least) per technique


@pytest.mark.parametrize("old,new,where,key", [
    ('technique = "tls.mitm"', 'technique = "tls.mitmx"', ":143", "isp[4].policy[2].technique"),
    ('asn = "AS9049"', 'asn = "9049"', ":128", "isp[4].asn"),
    ("rate_kbit = 128", 'rate_kbit = "fast"', ":81", "isp[2].policy[0].rate_kbit"),
    ('start = "10:30"', 'start = "25:61"', ":123", "isp[3].policy[3].start"),
    ("cadence_minutes = 30", "cadence_minutes = 30\nbogus = 1", ":12", "bogus"),
    ("vpn = true", "vpn = true\ncolour = 1", ":24", "isp[0].colour"),
    ('services = ["twitter", "facebook"]', 'services = ["twitter", "myspace"]', ":12", "services[1]"),
    ('service = "facebook"\nstart = "10:00"\n\n[[isp.policy]]\ntechnique = "quic.blocked"',
     'service = "frendster"\nstart = "10:00"\n\n[[isp.policy]]\ntechnique = "quic.blocked"', "", "service"),
])
def test_broken_scenario_names_the_key_and_line(old, new, where, key):
    assert old in RUSSIA
    with pytest.raises(ConfigError) as exc:
        parse_scenario(RUSSIA.replace(old, new, 1), "russia-2022.toml")
    msg = str(exc.value)
    assert f"russia-2022.toml{where}" in msg and key in msg
    assert "\n" not in msg


def test_not_toml_is_one_line():
    with pytest.raises(ConfigError, match=r"x.toml: not valid TOML"):
        parse_scenario("name = [", "x.toml")


def test_russia_labels():
    s = load_scenario("russia-2022")
    labels = build_labels(s)
    rows = {(x.isp, x.domain, x.technique, x.start, x.end) for x in labels}
    assert ("Rostelecom", "twitter.com", "throttled.targeted", "2022-02-26 09:00:00", "2022-02-26 12:00:00") in rows
    assert ("Rostelecom", "twitter.com", "tls.reset_after_hello", "2022-02-26 12:00:00", "2022-02-26 14:00:00") in rows
    # a different Facebook technique on every ISP
    fb = {x.isp: x.technique for x in labels if x.domain == "facebook.com" and x.service == "facebook"
          and x.technique != "quic.blocked"}
    assert len(set(fb.values())) == 5
    # the outage covers every endpoint measured on Beeline, the controls included
    out = [x for x in labels if x.technique == "outage"]
    assert {x.isp for x in out} == {"Beeline"} and "example.com" in {x.domain for x in out}
    assert all(x.asn.startswith("AS") and x.country == "RU" for x in labels)
    rates = {x.rate_bps for x in labels if x.technique == "throttled.targeted"}
    assert rates == {128_000, 130_000, 140_000, 150_000}


def test_kenya_labels_exam_windows():
    labels = build_labels(load_scenario("kenya-2023"))
    windows = {(x.isp, x.start[11:16], x.end[11:16]) for x in labels}
    assert windows == {(isp, a, b) for isp in ("Safaricom", "Airtel Kenya") for a, b in (("05:00", "08:00"),
                                                                                          ("11:00", "14:00"))}


def test_combine_keeps_each_technique_on_its_own_isp():
    parts = [load_scenario(n) for n in ("tls-reset", "dns-bogon")]
    c = combine(parts)
    assert [i.name for i in c.isps] == ["tls-reset", "dns-bogon"]
    assert len({i.asn for i in c.isps}) == 2 and set(c.services) == {"facebook", "twitter"}


def test_cli_list_one_line_per_scenario():
    r = netvigil("lab", "list")
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    assert len(lines) == len(list_scenarios())
    assert any(line.startswith("russia-2022 ") for line in lines)


def test_cli_validate(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(RUSSIA.replace('technique = "tls.mitm"', 'technique = "nope"'))
    r = run_cli("lab", "validate", "russia-2022", bad)  # in-process: parsing and errors are the same
    assert r.returncode == 2
    assert "ok: russia-2022" in r.stdout
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "bad.toml:143" in err[0] and "technique" in err[0]
    r = run_cli("lab", "validate", "no-such-scenario")
    assert r.returncode == 2 and "unknown scenario" in r.stderr and "russia-2022" in r.stderr


def test_labels_jsonl_fields(tmp_path):
    from netvigil.lab.labels import write_labels

    n = write_labels(load_scenario("vpn-blocked"), tmp_path / "labels.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert n == len(rows) == 1
    assert rows[0]["technique"] == "vpn.blocked" and rows[0]["path"] == "vpn"
    assert {"scenario", "country", "asn", "isp", "service", "domain", "technique", "class", "start",
            "end"} <= set(rows[0])
    assert rows[0]["class"] == "vpn" and rows[0]["start"] == "2022-03-01 09:00:00"


def test_clock_maps_rounds_to_wall_time():
    from netvigil.lab.clock import ScenarioClock

    s = load_scenario("russia-2022")
    clock = ScenarioClock(s, speed=1800.0, rounds=4)  # 30 scenario minutes = 1 wall second
    assert clock.rounds == 4 and clock.label(3) == "2022-02-26 07:30:00"
    slept: list[float] = []
    clock.wall0 -= 0.25  # a quarter second already gone
    clock.wait_for(2, sleep=slept.append)
    assert len(slept) == 1 and 1.5 < slept[0] <= 1.75
    clock.speed = 0
    clock.wait_for(3, sleep=slept.append)
    assert len(slept) == 1  # speed 0: back to back


def test_retired_names_have_no_address():
    from netvigil.lab.plan import make_plan

    s = load_scenario("stale-catalogue")
    assert set(s.retired) == {"m.facebook.com", "graph.facebook.com", "www.example.com"}
    plan = make_plan(s, "t0")
    assert not set(s.retired) & set(plan.domain_ip) and "facebook.com" in plan.domain_ip
    # only the main domain is labelled: the retired names fail for everyone, which is no technique
    assert {(x.domain, x.technique) for x in build_labels(s)} == {("facebook.com", "tls.reset_after_hello")}
    with pytest.raises(ConfigError, match=r"retired\[0\]: 'nope.example' is not a catalogue domain"):
        parse_scenario(RUSSIA.replace('country = "RU"', 'country = "RU"\nretired = ["nope.example"]', 1), "r.toml")


def test_lab_geo_table_names_every_vantage():
    from netvigil.lab.plan import geo_rows, make_plan

    s = load_scenario("russia-2022")
    rows = geo_rows(s, make_plan(s, "t0"))
    assert {(asn, cc, name) for _, asn, cc, name in rows} >= {(i.asn, i.cc, i.name) for i in s.isps}
    assert rows[0][1:] == (s.control.asn, s.control.cc, s.control.name)


def test_nothing_lab_only_in_the_package():
    """Issue 12: nothing in the probe, the analysis or the lab's service hosts names the path
    only our lab served (the first wave's `/netvigil-sample/N`): the package's code and text
    data never mention it (the hosts serve a page, the catalogue's objects, 404 elsewhere:
    tests/probe/test_real_objects.py)."""
    import netvigil

    root = Path(netvigil.__file__).parent
    texts = [p for p in root.rglob("*") if p.suffix in (".py", ".toml", ".json", ".jsonl", ".html", ".js", ".tsv", ".csv")]
    hits = [str(p.relative_to(root)) for p in texts if b"netvigil-sample" in p.read_bytes()]
    assert len(texts) > 100 and hits == []
