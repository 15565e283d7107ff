"""Rounds -> verdicts in context -> one incident per (country, service) event.

A hand-labelled timeline (factory.py): switch-on at round 10, several networks with
different techniques, a technique change, an outage on another network, a VPN path, and a
generally slow network. Onset and end must land on the labelled rounds.
"""

from __future__ import annotations

import random

from netvigil.analysis.incidents.builder import build_incidents
from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.engine import verdicts
from tests.analysis.factory import at, round_of, service

RULES = load_rules()


def timeline(rounds: int = 30) -> list:
    ms = []
    for r in range(rounds):
        t = at(r)
        tw1 = "tls.reset_after_hello" if 10 <= r < 20 else None
        fb1 = "dns.nxdomain" if 12 <= r < 19 else None
        ms += round_of(t, "AS12389", techniques={"twitter": tw1, "facebook": fb1}, services=("twitter", "facebook"))
        ms += round_of(t, "AS12389", path="vpn", services=("twitter",))  # the VPN exit is outside the censor
        if 10 <= r < 25:
            ms += round_of(t, "AS8359", techniques={"twitter": "throttled.targeted"}, rates={"twitter": 128_000})
        else:
            ms += round_of(t, "AS8359", techniques={"twitter": "tls.reset_after_hello" if r >= 25 else None})
        if 12 <= r < 16:
            ms += round_of(t, "AS3216", techniques={"twitter": "outage", "control": "outage"})
        else:
            ms += round_of(t, "AS3216")
        slow = 100_000 if 10 <= r < 20 else 50e6
        ms += round_of(t, "AS31213", rates={"twitter": slow, "control": slow})
    return ms


def test_one_incident_per_country_service_with_exact_onset_and_end():
    vs = list(verdicts(timeline(), RULES))
    incs = build_incidents(vs, RULES.incidents, RULES.version)
    tw = [i for i in incs if i.service == "twitter" and i.kind == "censorship"]
    assert len(tw) == 1, [(i.service, i.kind, i.start) for i in incs]
    inc = tw[0]
    nets = {n.asn: n for n in inc.networks}
    assert set(nets) == {"AS12389", "AS8359"}  # not the outage network, not the generally slow one
    assert nets["AS12389"].start == at(10) and nets["AS12389"].end == at(20)
    assert nets["AS12389"].technique == "tls.reset_after_hello"
    assert nets["AS8359"].start == at(10) and nets["AS8359"].end is None
    assert [t["technique"] for t in nets["AS8359"].techniques] == ["throttled.targeted", "tls.reset_after_hello"]
    assert nets["AS8359"].techniques[1]["start"] == at(25)
    assert inc.end is None and inc.start == at(10)
    assert inc.circumvention == "works"
    assert inc.evidence.rules_version == RULES.version and inc.evidence.vantage_networks >= 2


def test_outage_is_an_outage_and_a_block_elsewhere_stays_censorship():
    vs = list(verdicts(timeline(), RULES))
    incs = build_incidents(vs, RULES.incidents, RULES.version)
    outages = [i for i in incs if i.kind == "outage"]
    assert len(outages) == 1
    assert outages[0].networks[0].asn == "AS3216"
    assert (outages[0].start, outages[0].end) == (at(12), at(16))
    fb = [i for i in incs if i.service == "facebook"]
    assert len(fb) == 1 and fb[0].kind == "censorship" and fb[0].networks[0].technique == "dns.nxdomain"
    assert (fb[0].start, fb[0].end) == (at(12), at(19))
    # the outage network's twitter verdicts are outage, never censorship
    assert all(v.klass == "outage" for v in vs if v.probe_asn == "AS3216" and at(12) <= v.measurement_start_time < at(16))


def test_throttling_rate_ratio_and_general_slowness():
    vs = list(verdicts(timeline(), RULES))
    thr = [v for v in vs if v.probe_asn == "AS8359" and v.service == "twitter" and v.klass == "throttled"]
    assert len(thr) == 15
    assert all(v.technique == "throttled.targeted" for v in thr)
    assert all(abs(v.rate_bps - 128_000) / 128_000 < 0.2 for v in thr)
    assert all(v.baseline_ratio is not None and v.baseline_ratio < 0.3 for v in thr)
    slow = [v for v in vs if v.probe_asn == "AS31213" and at(10) <= v.measurement_start_time < at(20)]
    assert slow and not any(v.technique == "throttled.targeted" for v in slow)
    assert any(v.technique == "throttled.general" for v in slow)


def test_vpn_blocked_means_circumvention_blocked():
    ms = []
    for r in range(20):
        t = at(r)
        ms += round_of(t, "AS12389", techniques={"twitter": "tls.reset_after_hello" if r >= 5 else None})
        ms += round_of(t, "AS12389", path="vpn", techniques={"twitter": "tcp.ip_blocked" if r >= 8 else None,
                                                              "control": "tcp.ip_blocked" if r >= 8 else None})
    incs = build_incidents(verdicts(ms, RULES), RULES.incidents, RULES.version)
    assert [i.circumvention for i in incs if i.service == "twitter"] == ["blocked"]


def test_no_false_throttling_over_200_unthrottled_rounds():
    rnd = random.Random(7)
    ms = []
    for r in range(200):
        rate = rnd.uniform(5e6, 80e6)
        ms += round_of(at(r, 5), "AS12389", rates={"twitter": rate * rnd.uniform(0.5, 1.5), "control": rate})
    vs = [v for v in verdicts(ms, RULES) if v.service == "twitter"]
    assert len(vs) == 200
    assert sum(v.klass == "throttled" for v in vs) == 0
    assert not build_incidents(vs, RULES.incidents, RULES.version)


def test_single_bad_round_opens_nothing():
    ms = []
    for r in range(12):
        ms += round_of(at(r), techniques={"twitter": "tls.reset_after_hello" if r == 5 else None})
    assert not build_incidents(verdicts(ms, RULES), RULES.incidents, RULES.version)


def test_round_order_does_not_matter():
    """Service first or control first: the same verdicts."""
    a = [service("twitter", at(0), technique="outage"), service("control", at(0), technique="outage")]
    b = list(reversed(a))
    va = sorted((v.service, v.klass) for v in verdicts(a, RULES))
    vb = sorted((v.service, v.klass) for v in verdicts(b, RULES))
    assert va == vb == [("control", "outage"), ("twitter", "outage")]


def test_silence_is_an_outage():
    """A network that stops sending measurements (its probes cannot reach the collector)."""
    ms = []
    svcs = ("twitter", "facebook", "telegram")
    for r in range(30):
        ms += round_of(at(r), "AS12389", services=svcs)
        if not 12 <= r < 18:
            ms += round_of(at(r), "AS8359", services=svcs)
    incs = build_incidents(verdicts(ms, RULES), RULES.incidents, RULES.version)
    assert [(i.kind, i.service, [n.asn for n in i.networks]) for i in incs] == [("outage", "*", ["AS8359"])]
    assert incs[0].start == at(12) and incs[0].end == at(18)


def test_irregular_volunteer_probes_are_not_silence():
    rnd = random.Random(3)
    ms, t = [], 0
    for _ in range(40):
        t += rnd.choice([1, 1, 2, 5, 9, 14])
        ms += round_of(at(t), "AS12389", services=("twitter", "facebook", "telegram"))
    assert not build_incidents(verdicts(ms, RULES), RULES.incidents, RULES.version)


def slow_handshake(when: str, read_bytes: int, seconds: float, asn: str = "AS12389"):
    """Twitter's handshakes read a few bytes slowly, then time out (Russia 2022-02-26)."""
    m = service("twitter", when, asn=asn, technique="tls.timeout_after_hello")
    events = []
    for h in m.test_keys["tls_handshakes"]:
        h["t0"], h["t"] = 0.02, 0.02 + seconds
        if read_bytes:
            for k in range(4):  # the ServerHello trickles in
                events.append({"operation": "read", "num_bytes": read_bytes // 4, "t0": 0.02 + seconds * k / 5,
                               "t": 0.02 + seconds * (k + 1) / 5, "transaction_id": h["transaction_id"]})
    m.test_keys["network_events"] = events
    return [m, service("control", when, asn=asn)]


def test_slow_then_timeout_handshake_is_throttling_and_silent_timeout_is_not():
    slow = [v for v in verdicts(slow_handshake(at(0), 1600, 10.0), RULES) if v.service == "twitter"][0]
    assert slow.technique == "throttled.targeted" and "tls.slow_then_timeout" in slow.rule_ids
    assert 1000 < slow.rate_bps < 2000  # 1600 bytes over 8 s of reads
    silent = [v for v in verdicts(slow_handshake(at(0), 0, 10.0), RULES) if v.service == "twitter"][0]
    assert silent.technique == "tls.timeout_after_hello"
