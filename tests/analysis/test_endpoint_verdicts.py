"""Per-endpoint verdicts, stale endpoints set aside (issue #12): the service is judged from its
endpoints; an endpoint failing the same way from a control vantage (another country, same
time) is stale, listed and left out; a block on one endpoint is never masked by another
endpoint's or a control's failure at another step. Real-shaped probe measurements
(factory.py): facebook.com reset after the ClientHello, two retired facebook names and one
retired control name NXDOMAIN on every network."""

from __future__ import annotations

from netvigil.analysis.rules import load_rules
from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.analysis.verdicts.engine import verdicts
from tests.analysis.factory import at, service

FB = ["facebook.com", "www.facebook.com", "m.facebook.com"]
RETIRED = {"www.facebook.com": "dns.nxdomain", "m.facebook.com": "dns.nxdomain"}
CONTROL = ["example.com", "retired.example.net"]


def _round(when: str, *, asn: str, cc: str, reset: bool) -> list:
    fb = dict(RETIRED, **({"facebook.com": "tls.reset_after_hello"} if reset else {}))
    return [service("facebook", when, asn=asn, cc=cc, domains=FB, per_domain=fb),
            service("control", when, asn=asn, cc=cc, domains=CONTROL, per_domain={"retired.example.net": "dns.nxdomain"})]


def _by(vs, asn, svc):
    return [v for v in vs if v.probe_asn == asn and v.service == svc]


def test_stale_names_are_set_aside_and_the_reset_stands():
    ms = _round(at(0), asn="AS12389", cc="RU", reset=True) + _round(at(0), asn="AS64500", cc="ZZ", reset=False)
    vs = list(verdicts(ms, load_rules()))
    [ru] = _by(vs, "AS12389", "facebook")
    assert (ru.klass, ru.technique) == ("tls", "tls.reset_after_hello")
    assert ru.stale_endpoints == RETIRED
    assert ru.endpoints == {"facebook.com": "tls.reset_after_hello", **RETIRED}
    assert "context.stale_endpoints_set_aside" in ru.rule_ids
    [zz] = _by(vs, "AS64500", "facebook")  # at the control vantage the live name works
    assert zz.klass == "ok" and zz.stale_endpoints == RETIRED
    [ctl] = _by(vs, "AS12389", "control")
    assert ctl.klass == "ok" and ctl.stale_endpoints == {"retired.example.net": "dns.nxdomain"}


def test_without_a_control_vantage_the_controls_dns_failure_does_not_mask_the_reset():
    """Only the censored network measured: its controls fail at DNS (a retired name), which
    excuses the service's DNS failures, never facebook.com's reset at the TLS step."""
    vs = list(verdicts(_round(at(0), asn="AS12389", cc="RU", reset=True), load_rules()))
    [ru] = _by(vs, "AS12389", "facebook")
    assert (ru.klass, ru.technique) == ("tls", "tls.reset_after_hello")
    assert "context.dns_fails_for_controls_too" in ru.rule_ids and ru.stale_endpoints == {}


def test_a_service_whose_every_failing_name_is_stale_is_ok():
    ms = _round(at(0), asn="AS12389", cc="RU", reset=False) + _round(at(0), asn="AS64500", cc="ZZ", reset=False)
    [ru] = _by(list(verdicts(ms, load_rules())), "AS12389", "facebook")
    assert ru.klass == "ok" and ru.stale_endpoints == RETIRED


def test_the_store_keeps_the_endpoint_fields(tmp_path):
    ms = _round(at(0), asn="AS12389", cc="RU", reset=True) + _round(at(0), asn="AS64500", cc="ZZ", reset=False)
    want = sorted(verdicts(ms, load_rules()), key=lambda v: (v.measurement_start_time, v.measurement_uid))
    with AnalysedStore(tmp_path / "obs") as obs:
        obs.add(ms)
        assert obs.verdicts(limit=None, order="ASC") == want


def test_the_control_vantage_need_not_measure_at_the_same_second():
    """Real probes never share a start time: a control vantage's measurement in the same
    window (rules.toml stale_window_seconds) sets the dead names aside; one outside does not."""
    from datetime import datetime, timedelta

    def later(minutes: int) -> str:
        return (datetime.fromisoformat(at(0)) + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")

    window = load_rules().thresholds["stale_window_seconds"]
    inside = _round(at(0), asn="AS12389", cc="RU", reset=True) + _round(later(17), asn="AS64500", cc="ZZ", reset=False)
    [ru] = _by(list(verdicts(inside, load_rules())), "AS12389", "facebook")
    assert ru.technique == "tls.reset_after_hello" and ru.stale_endpoints == RETIRED
    outside = _round(at(0), asn="AS12389", cc="RU", reset=True) + _round(later(int(window // 60) + 60), asn="AS64500", cc="ZZ", reset=False)
    [ru] = _by(list(verdicts(outside, load_rules())), "AS12389", "facebook")
    assert ru.technique == "tls.reset_after_hello" and ru.stale_endpoints == {}
