"""How endpoint findings combine into one service verdict.

Real lab data (tests/analysis/data/ru2022_as12389_1030_1100.jsonl: Rostelecom, russia-2022,
rounds 10:30 and 11:00 of a live `netvigil demo` run). Ground truth for twitter at 11:00:
throttled.targeted (TCP/TLS shaped to 130 kbit/s) and quic.blocked switched on. In the 11:00 round one
endpoint's TCP connects timed out once (a transient while the censor's rules changed) and x.com
failed only over QUIC; the service verdict was tcp.ip_blocked. It must name the specific
evidence: throttling measured against the same-round controls, QUIC as secondary.
"""

from __future__ import annotations

from pathlib import Path

from netvigil.analysis.verdicts.endpoints import EndpointResult, service_finding
from netvigil.analysis.verdicts.finding import Finding
from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.engine import judge, verdicts
from netvigil.ingest.ooni import read_measurements

DATA = Path(__file__).resolve().parent / "data" / "ru2022_as12389_1030_1100.jsonl"


def _twitter(time: str):
    vs = [v for v in verdicts(read_measurements([DATA])) if v.service == "twitter" and v.measurement_start_time == time]
    assert len(vs) == 1
    return vs[0]


def test_quic_switch_on_during_throttling_stays_throttled():
    v = _twitter("2022-02-26 11:00:00")
    assert v.technique == "throttled.targeted", (v.technique, v.rule_ids)
    assert "secondary:quic.blocked" in v.rule_ids
    assert v.rate_bps is not None and v.rate_bps < 400_000


def _ep(dom: str, tech: str | None, failure: str = "generic_timeout_error") -> EndpointResult:
    r = EndpointResult(dom)
    r.tried = 3
    if tech:
        step = tech.split(".")[0]
        r.finding = Finding(tech.split(".")[0], tech, 0.5, rule_ids=[f"{step}.failure:{failure}"], domain=dom)
        if step == "quic":  # as endpoint_results records it: TCP/TLS worked, QUIC failed
            r.quic_tried, r.quic_finding = 1, r.finding
    return r


def test_quic_only_failures_with_working_tcp_tls_are_quic_blocked():
    rules = load_rules()
    eps = {d: _ep(d, None) for d in ("a.example", "b.example", "c.example", "d.example", "e.example")}
    eps["d.example"] = _ep("d.example", "quic.blocked")
    eps["e.example"] = _ep("e.example", "quic.blocked")
    eps["a.example"] = _ep("a.example", "tcp.ip_blocked")  # one isolated TCP timeout
    f = service_finding(eps, rules)
    assert f.technique == "quic.blocked", (f.technique, f.rule_ids)
    assert "tcp.ip_blocked" in f.secondary


def test_specific_failure_outranks_timeouts_on_a_tie():
    rules = load_rules()
    eps = {"a.example": _ep("a.example", "tcp.ip_blocked"), "b.example": _ep("b.example", "tcp.ip_blocked"),
           "c.example": _ep("c.example", "tls.reset_after_hello", "connection_reset"),
           "d.example": _ep("d.example", "tls.reset_after_hello", "connection_reset")}
    f = service_finding(eps, rules)
    assert f.technique == "tls.reset_after_hello", (f.technique, f.rule_ids)


def test_tcp_blocking_on_most_endpoints_still_wins_over_quic():
    rules = load_rules()
    eps = {d: _ep(d, "tcp.ip_blocked") for d in ("a.example", "b.example", "c.example")}
    eps["d.example"] = _ep("d.example", "quic.blocked")
    f = service_finding(eps, rules)
    assert f.technique == "tcp.ip_blocked"
    assert "quic.blocked" in f.secondary


def test_same_address_failing_once_and_working_once_is_a_transient():
    """quiet-200 (no policy at all), 07:05: abs.twimg.com's first TLS handshake succeeded and a
    second one to the same address, same name, got EOF, on both vantages. A censor's policy is
    deterministic per (name, address, port): that EOF is not evidence of blocking. (Both
    endpoints' QUIC also timed out, for the same-round controls too: not a block either.)"""
    # the round as recorded then (quiet-200 was re-recorded since with the helper path)
    lab = Path(__file__).resolve().parent / "data" / "quiet200_0705_eof_then_ok.jsonl"
    ms = [m for m in read_measurements([lab]) if m.measurement_start_time == "2022-03-01 07:05:00"
          and (m.annotations or {}).get("service") in ("twitter", "control")]
    rules = load_rules()
    alone = [judge(m, rules) for m in ms if m.annotations["service"] == "twitter"]
    assert len(alone) == 2
    for f in alone:  # without the round's controls: the EOF is set aside, QUIC remains
        assert f.technique == "quic.blocked", (f.technique, f.rule_ids)
        assert "service.failure_and_success_same_address" in f.rule_ids
        assert "secondary:tls.failure:eof_error" in f.rule_ids
    vs = [v for v in verdicts(ms) if v.service == "twitter"]
    assert len(vs) == 2 and all(v.klass == "ok" for v in vs), [(v.technique, v.rule_ids) for v in vs]
