"""A stale catalogue never masks a block (issue 12): scenario `stale-catalogue`, where some
catalogue names of Facebook and of the control have retired (NXDOMAIN everywhere, from the
control vantage too) while facebook.com is reset after its ClientHello. Its own lab: the
retired names are retired for every ISP of a lab."""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

from netvigil.lab.scenario import load_scenario

from .conftest import BEFORE, DURING, TIMEOUT
from .measure import endpoint, failures, load, pick

pytestmark = [pytest.mark.lab, pytest.mark.slow]
RETIRED = (("facebook", "m.facebook.com"), ("facebook", "graph.facebook.com"), ("control", "www.example.com"))


@pytest.fixture(scope="module")
def stale_run(lab_ready) -> tuple[list[dict], str, dict]:
    from netvigil.lab.runner import Lab

    scenario = load_scenario("stale-catalogue")
    ms: list[dict] = []
    problems = {}
    work = Path(tempfile.mkdtemp(prefix="netvigil-lab-stale-"))
    with Lab(scenario, work) as lab:
        for when in (BEFORE, DURING):
            lab.apply(datetime.strptime(when, "%Y-%m-%d %H:%M:%S"))
            data, problems[when] = lab.probe_round(when, lab.vantages(), timeout=TIMEOUT, parallel=3, tag=when[11:13])
            ms += load(data)
    return ms, scenario.isps[0].asn, problems


def test_probes_ran(stale_run):
    assert stale_run[2] == {BEFORE: {}, DURING: {}}


def test_retired_names_fail_everywhere(stale_run):
    ms, asn, _ = stale_run
    for who in (asn, "AS64500"):
        for when in (BEFORE, DURING):
            for service, domain in RETIRED:
                s = endpoint(pick(ms, when=when, asn=who, service=service), domain)
                assert set(failures(s, "queries")) == {"dns_nxdomain_error"}, (who, when, domain)


def test_reset_on_the_main_domain_and_at_the_helper(stale_run):
    ms, asn, _ = stale_run
    during = pick(ms, when=DURING, asn=asn, service="facebook")
    assert set(failures(endpoint(during, "facebook.com"), "tls_handshakes")) == {"connection_reset"}
    before = pick(ms, when=BEFORE, asn=asn, service="facebook")
    assert set(failures(endpoint(before, "facebook.com"), "tls_handshakes")) == {None}
    x = during["test_keys"]["x_sni_throughput"]
    assert x["target_sni"] == "facebook.com"
    assert all(t["failure"] == "connection_reset" for t in x["transfers"] if t["role"] == "target")
    assert all(t["failure"] is None for t in x["transfers"] if t["role"] == "control")


def test_verdict_is_the_reset_not_masked(stale_run):
    """The round's verdict (the service judged with its controls): the reset, never `ok`
    because the retired names of the service and of the control failed too."""
    from netvigil.analysis.verdicts.engine import verdict_stream
    from netvigil.model.measurement import decode_measurement

    ms, asn, _ = stale_run
    rnd = [decode_measurement(json.dumps(m).encode()) for m in ms
           if m["probe_asn"] == asn and m["measurement_start_time"] == DURING and m["test_name"] == "service"
           and m["annotations"].get("path", "direct") == "direct"]
    got = {m.annotations["service"]: v for m, v in verdict_stream(rnd)}
    assert got["facebook"].technique == "tls.reset_after_hello", got["facebook"]


def test_verdict_output_lists_the_stale_endpoints(stale_run, tmp_path):
    """`netvigil analyse --format jsonl` on the run, as a user reads it: the reset with the
    per-endpoint findings, and the retired names listed as stale (they fail at the control
    vantage the same way) on every network and round, the service's and the control's."""
    from tests.clirun import run_cli

    ms, asn, _ = stale_run
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in ms if m["test_name"] == "service"))
    r = run_cli("analyse", str(path), "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    vs = {(v["probe_asn"], v["measurement_start_time"], v["service"]): v
          for v in map(json.loads, r.stdout.splitlines()) if v["path"] == "direct"}
    fb = vs[(asn, DURING, "facebook")]
    assert fb["technique"] == "tls.reset_after_hello" and fb["endpoints"]["facebook.com"] == "tls.reset_after_hello"
    retired = {s: {d: "dns.nxdomain" for sv, d in RETIRED if sv == s} for s in ("facebook", "control")}
    for (who, when, service), v in vs.items():
        assert v["stale_endpoints"] == retired[service], (who, when, service, v)
