"""Every censorship technique of the lab, measured by the real probe inside a lab ISP:
the failure string, the failed operation and the timing signature that real measurements
of the technique show (issue 4), with the control vantage and the VPN path as witnesses."""

from __future__ import annotations

import json

import msgspec
import pytest

from .conftest import BEFORE, DURING
from .measure import all_ok, endpoint, failures, pick, problems

pytestmark = [pytest.mark.lab, pytest.mark.slow]
from .conftest import TIMEOUT


def steps(run, scenario, service, domain, when=DURING, path="direct"):
    m = pick(run.ms, when=when, asn=run.asn[scenario], service=service, path=path)
    return endpoint(m, domain)


def a_records(qs):
    return [a["ipv4"] for q in qs if q["query_type"] == "A" for a in q.get("answers") or []]


def failed_read_after_hello(ev: list[dict]) -> dict:
    """The handshake's failing read, checked to come after the ClientHello was written."""
    writes = [e for e in ev if e["operation"] == "write" and (e.get("num_bytes") or 0) > 200]
    reads = [e for e in ev if e["operation"] == "read" and e.get("failure")]
    assert writes, f"no ClientHello write in {ev}"
    assert reads, f"no failed read in {ev}"
    assert reads[0]["t"] >= writes[0]["t"]
    return reads[0]


def test_probes_ran_everywhere(technique_run):
    assert technique_run.problems[BEFORE] == {} and technique_run.problems[DURING] == {}


@pytest.mark.parametrize("scenario,service", [
    ("dns-nxdomain", "twitter"), ("dns-bogon", "twitter"), ("dns-injected", "twitter"),
    ("dns-blockpage", "facebook"), ("ip-drop", "telegram"), ("ip-reject", "telegram"),
    ("tls-reset", "facebook"), ("tls-fin", "facebook"), ("tls-drop", "facebook"), ("tls-mitm", "facebook"),
    ("outage", "twitter")])
def test_reachable_before_the_window(technique_run, scenario, service):
    m = pick(technique_run.ms, when=BEFORE, asn=technique_run.asn[scenario], service=service)
    assert problems(m) == []


def test_dns_nxdomain(technique_run):
    s = steps(technique_run, "dns-nxdomain", "twitter", "twitter.com")
    assert "dns_nxdomain_error" in failures(s, "queries")
    ctl = steps(technique_run, "dns-nxdomain", "control", "example.com")
    assert a_records(ctl["queries"]) and None in failures(ctl, "tcp_connect")


def test_dns_bogon(technique_run):
    s = steps(technique_run, "dns-bogon", "twitter", "twitter.com")
    assert a_records(s["queries"]) == ["127.0.0.1"]
    assert failures(s, "tcp_connect") and set(f for f in failures(s, "tcp_connect")) == {"connection_refused"}
    assert s["tcp_connect"][0]["ip"] == "127.0.0.1"


def test_dns_blockpage(technique_run):
    s = steps(technique_run, "dns-blockpage", "facebook", "facebook.com")
    bp = technique_run.isp_net["dns-blockpage"].blockpage
    assert a_records(s["queries"]) == [bp]
    # the block-page host presents the censor's certificate for the service name
    assert failures(s, "tls_handshakes") and set(failures(s, "tls_handshakes")) == {"ssl_unknown_authority"}


def test_dns_injection_two_answers_first_forged(technique_run):
    s = steps(technique_run, "dns-injected", "twitter", "twitter.com")
    first = [q for q in s["queries"] if q["query_type"] == "A"]
    late = [q for q in s["x_dns_late_replies"] if q["query_type"] == "A"]
    assert a_records(first) == ["10.77.250.1"]
    assert a_records(late) == ["10.77.128.1"]
    assert late[0]["t"] > first[0]["t"]


def test_ip_drop_times_out_on_connect(technique_run):
    s = steps(technique_run, "ip-drop", "telegram", "telegram.org")
    c = s["tcp_connect"][0]
    assert c["status"]["failure"] == "generic_timeout_error"
    assert c["t"] - c["t0"] >= TIMEOUT * 0.9
    assert not s["tls_handshakes"]


def test_ip_reject_refuses_connect(technique_run):
    s = steps(technique_run, "ip-reject", "telegram", "telegram.org")
    c = s["tcp_connect"][0]
    assert c["status"]["failure"] == "connection_refused"
    assert c["t"] - c["t0"] < TIMEOUT / 2


def test_reset_after_client_hello(technique_run):
    s = steps(technique_run, "tls-reset", "facebook", "facebook.com")
    assert failures(s, "tcp_connect") and set(failures(s, "tcp_connect")) == {None}
    assert failures(s, "tls_handshakes") and set(failures(s, "tls_handshakes")) == {"connection_reset"}
    read = failed_read_after_hello(s["network_events"])
    assert read["failure"] == "connection_reset" and read["t"] - read["t0"] < TIMEOUT / 2


def test_fin_after_client_hello(technique_run):
    s = steps(technique_run, "tls-fin", "facebook", "facebook.com")
    assert failures(s, "tcp_connect") and set(failures(s, "tcp_connect")) == {None}
    assert failures(s, "tls_handshakes") and set(failures(s, "tls_handshakes")) == {"eof_error"}
    read = failed_read_after_hello(s["network_events"])
    assert read["failure"] == "eof_error" and read["t"] - read["t0"] < TIMEOUT / 2


def test_drop_after_client_hello(technique_run):
    s = steps(technique_run, "tls-drop", "facebook", "facebook.com")
    assert failures(s, "tcp_connect") and set(failures(s, "tcp_connect")) == {None}
    assert failures(s, "tls_handshakes") and set(failures(s, "tls_handshakes")) == {"generic_timeout_error"}
    read = failed_read_after_hello(s["network_events"])
    assert read["t"] - read["t0"] >= TIMEOUT * 0.9


def test_tls_mitm_censor_certificate(technique_run):
    s = steps(technique_run, "tls-mitm", "facebook", "facebook.com")
    assert failures(s, "tcp_connect") and set(failures(s, "tcp_connect")) == {None}
    assert failures(s, "tls_handshakes") and set(failures(s, "tls_handshakes")) == {"ssl_unknown_authority"}
    ctl = steps(technique_run, "tls-mitm", "control", "example.com")
    assert set(failures(ctl, "tls_handshakes")) == {None}


def test_http_blockpage_injected(technique_run):
    asn = technique_run.asn["http-blockpage"]
    during = pick(technique_run.ms, when=DURING, asn=asn, test_name="web")
    before = pick(technique_run.ms, when=BEFORE, asn=asn, test_name="web")
    def body(m):
        reqs = [r for r in m["test_keys"]["requests"] if r["request"]["url"] == "http://meduza.io/"]
        assert reqs, m["test_keys"]["requests"]
        return str((reqs[0].get("response") or {}).get("body"))

    assert "Доступ к сайту ограничен" in body(during)
    assert "Доступ к сайту ограничен" not in body(before) and "meduza.io" in body(before)


def test_quic_blocked_tls_still_works(technique_run):
    s = steps(technique_run, "quic-drop", "twitter", "twitter.com")
    # a timed-out handshake is tried once more (a busy machine can outlast the timeout): the
    # censor drops the second attempt too
    assert failures(s, "quic_handshakes") == ["generic_timeout_error"] * 2
    assert set(failures(s, "tls_handshakes")) == {None}
    before = steps(technique_run, "quic-drop", "twitter", "twitter.com", when=BEFORE)
    assert failures(before, "quic_handshakes") == [None]


def helper_test(run, scenario, service, when=DURING) -> dict:
    """Per direction, the SNI-keyed throughput test's comparison (analysis/verdicts/throughput.py)."""
    from netvigil.analysis.rules import load_rules
    from netvigil.analysis.verdicts.throughput import compare, read_test

    m = pick(run.ms, when=when, asn=run.asn[scenario], service=service)
    test = read_test(m["test_keys"])
    assert test is not None and test.helper and test.failure is None, m["test_keys"].get("x_sni_throughput")
    th = load_rules().thresholds
    return {d: compare(test, d, th) for d in ("download", "upload")}


def verdict(run, scenario, service, when=DURING):
    from netvigil.analysis.rules import load_rules
    from netvigil.analysis.verdicts.engine import judge
    from netvigil.model.measurement import decode_measurement

    m = pick(run.ms, when=when, asn=run.asn[scenario], service=service)
    return judge(decode_measurement(json.dumps(m).encode()), load_rules())


def test_no_lab_only_path(technique_run):
    """The probe asks real hosts only for what they serve (a page, catalogue objects)."""
    urls = {r["request"]["url"] for m in technique_run.ms for r in m["test_keys"]["requests"]}
    urls |= {t["url"] for m in technique_run.ms for t in m["test_keys"]["throughput"]}
    assert not [u for u in urls if "netvigil-sample" in u]


@pytest.mark.parametrize("direction", ["download", "upload"])
def test_targeted_throttling_128k_both_directions(technique_run, direction):
    """Flows to the helper (an address the censor knows nothing of) with Twitter's SNI are
    shaped to 128 kbit/s each way; the same flows with the control SNI are not."""
    d = helper_test(technique_run, "throttle-128k", "twitter")[direction]
    # an upload is timed where it lands, by the helper's kernel receive clock (a busy helper
    # reads late; helper/wireclock.py), a download by the probe as it reads
    assert 0.8 * 128_000 <= d.target_bps <= 1.2 * 128_000, d
    assert d.control_bps > 10 * d.target_bps and d.throttled, d
    before = helper_test(technique_run, "throttle-128k", "twitter", when=BEFORE)[direction]
    assert not before.throttled and before.target_bps > 10 * d.target_bps, before


def test_targeted_throttling_verdict(technique_run):
    f = verdict(technique_run, "throttle-128k", "twitter")
    assert f.technique == "throttled.targeted" and 0.8 * 128_000 <= f.rate_bps <= 1.2 * 128_000, f
    assert verdict(technique_run, "throttle-128k", "twitter", when=BEFORE).klass == "ok"
    assert verdict(technique_run, "throttle-128k", "control").klass == "ok"


@pytest.mark.parametrize("service,rate", [("twitter", 128_000), ("facebook", 400_000), ("telegram", 1_000_000)])
def test_several_rates_on_one_isp(technique_run, service, rate):
    # within 20% both ways at every rate: the lab's veths send wire-sized packets, so htb
    # no longer passes a 4 KiB TLS record on a token debt (it did: 402-550 kbit/s at 400
    # kbit/s on CI, 2026-12-06; lab/topology.py)
    for direction, d in helper_test(technique_run, "throttle-rates", service).items():
        tol = 0.2
        assert (1 - tol) * rate <= d.target_bps <= (1 + tol) * rate, (direction, d)
        # 20 KB control flows on a loaded 2-core lab measure 2-10 Mbit/s (docs/lab.md): a
        # 1 Mbit/s shaper is only a little slower than that, the field's 128-400 kbit/s far
        assert d.control_bps > (3 if rate <= 400_000 else 1) * d.target_bps, (direction, d)


def test_general_throttling_slows_both_snis(technique_run):
    d = helper_test(technique_run, "throttle-general", "twitter")["download"]
    # target and control flows share the 2 Mbit/s uplink: as slow as each other, not targeted
    assert d.control_bps <= 1.2 * 2_000_000 and d.target_bps <= 1.2 * 2_000_000 and not d.throttled, d
    before = helper_test(technique_run, "throttle-general", "control", when=BEFORE)["download"]
    assert before.control_bps > 2 * d.control_bps, before
    assert verdict(technique_run, "throttle-general", "twitter").technique != "throttled.targeted"


def test_general_throttling_identified_in_the_round_context(technique_run):
    """Every measurement of the run through the analysis, as an observatory would: the ISP
    whose whole uplink is slow is `throttled.general` (its 20 KB helper flows are timed; the
    other vantages' fast flows, too short to time, are a lower bound for reference), and no
    ISP without slowness is."""
    from netvigil.analysis.rules import load_rules
    from netvigil.analysis.verdicts.engine import verdicts
    from netvigil.model.measurement import decode_measurement

    ms = [decode_measurement(json.dumps(m).encode()) for m in technique_run.ms]
    v = {(x.probe_asn, x.measurement_start_time, x.service, x.path): x for x in verdicts(ms, load_rules())}
    slow = technique_run.asn["throttle-general"]
    assert v[(slow, DURING, "control", "direct")].technique == "throttled.general", v[(slow, DURING, "control", "direct")]
    assert v[(slow, BEFORE, "control", "direct")].klass == "ok"
    noisy = {technique_run.asn[s] for s in ("throttle-general", "outage", "outage-partial")}
    general = [k for k, x in v.items() if x.technique == "throttled.general" and k[0] not in noisy]
    assert general == [], general


def test_sni_reset_seen_at_the_helper_too(technique_run):
    """A reset keyed on the SNI hits the flow to the helper as well: evidence at any address."""
    m = pick(technique_run.ms, when=DURING, asn=technique_run.asn["tls-reset"], service="facebook")
    x = m["test_keys"]["x_sni_throughput"]
    target = [t for t in x["transfers"] if t["role"] == "target"]
    control = [t for t in x["transfers"] if t["role"] == "control"]
    assert target and all(t["failure"] == "connection_reset" and t["failed_operation"] == "tls_handshake" for t in target)
    assert control and all(t["failure"] is None for t in control)


def test_helper_unreachable_in_an_outage_is_no_verdict(technique_run):
    m = pick(technique_run.ms, when=DURING, asn=technique_run.asn["outage"], service="twitter")
    assert m["test_keys"]["x_sni_throughput"]["failure"].startswith("helper_unreachable")
    assert verdict(technique_run, "outage", "twitter").klass != "throttled"


def test_vpn_path_sees_the_service_during_a_block(technique_run):
    asn = technique_run.asn["tls-reset"]
    direct = pick(technique_run.ms, when=DURING, asn=asn, service="facebook")
    via_vpn = pick(technique_run.ms, when=DURING, asn=asn, service="facebook", path="vpn")
    assert not all_ok(direct) and all_ok(via_vpn)
    # the helper flows go through the tunnel too: the SNI the censor resets passes there
    x = via_vpn["test_keys"]["x_sni_throughput"]
    assert x["transfers"] and all(t["failure"] is None for t in x["transfers"]), x


def test_vpn_blocked(technique_run):
    asn = technique_run.asn["vpn-blocked"]
    assert all_ok(pick(technique_run.ms, when=BEFORE, asn=asn, service="twitter", path="vpn"))
    during = pick(technique_run.ms, when=DURING, asn=asn, service="twitter", path="vpn")
    assert not any(c["status"]["success"] for c in during["test_keys"]["tcp_connect"])
    # the direct path of the same subscriber line still works: only the VPN is blocked
    assert all_ok(pick(technique_run.ms, when=DURING, asn=asn, service="twitter"))


def test_control_vantage_sees_every_service_during_blocks(technique_run):
    ctl = [m for m in technique_run.ms if m["measurement_start_time"] == DURING and m["probe_asn"] == "AS64500"
           and m["test_name"] != "web"]
    assert {m["annotations"]["service"] for m in ctl} >= {"twitter", "facebook", "telegram", "control"}
    assert all(all_ok(m) for m in ctl)


def test_outage_fails_everything_controls_included(technique_run):
    asn = technique_run.asn["outage"]
    for service in ("twitter", "control"):
        m = pick(technique_run.ms, when=DURING, asn=asn, service=service)
        tk = m["test_keys"]
        assert not any(c["status"]["success"] for c in tk["tcp_connect"])
        assert all(q.get("failure") for q in tk["queries"])


def test_partial_loss(technique_run):
    # 30% random drop each way: ~51% of round trips lost (200 queries: 0.3-0.7 is > 4 sigma)
    assert 0.3 <= technique_run.ping_loss <= 0.7


def test_nothing_routes_out_of_the_lab(technique_run):
    assert technique_run.route_get
    for key, (rc, out) in technique_run.route_get.items():
        assert rc != 0 and "unreachable" in out.lower(), (key, out)
    assert all(v == "" for v in technique_run.default_routes.values())
    assert technique_run.root_links_before == technique_run.root_links_after



# outage-partial: 30% loss each way for one round. Rule context.path_loss finds it from the
# controls' SYN retransmissions and control-SNI helper timeouts (8/8 in five lab runs,
# docs/evaluation.md), but whether one round's few control connects show a retransmission is
# chance (~1 round in 10 shows too little), and a suite must not fail on a draw: the rule is
# tested on recorded lossy rounds (tests/analysis/test_path_loss.py), the loss here
# (test_partial_loss).
# throttle-rates: judged per service below (its 1 Mbit/s flows are too short for the KS test)
NOT_EXACT = {"outage-partial", "throttle-rates"}


def scored(run, scenario: str, tmp_path):
    """`netvigil evaluate --lab` on one technique scenario's ISP of the combined run (with the
    control vantage, whose measurements are the analysis' witnesses)."""
    from netvigil.evaluate.lab import evaluate_lab
    from netvigil.lab.labels import build_labels

    asn = run.asn[scenario]
    ms = [m for m in run.ms if m["probe_asn"] in (asn, run.control_asn)]
    (tmp_path / "measurements.jsonl").write_text("".join(json.dumps(m) + "\n" for m in ms))
    labels = [x for x in build_labels(run.scenario) if x.asn == asn]
    (tmp_path / "labels.jsonl").write_bytes(b"".join(msgspec.json.encode(x) + b"\n" for x in labels))
    return evaluate_lab(tmp_path)


def _technique_scenarios() -> list[str]:
    from netvigil.lab.scenario import list_scenarios

    from .conftest import BIG
    return sorted(p.stem for p in list_scenarios() if p.stem not in BIG)


@pytest.mark.parametrize("scenario", [s for s in _technique_scenarios() if s not in NOT_EXACT])
def test_every_scenario_identified_on_its_isp(technique_run, scenario, tmp_path):
    """Each technique scenario's ISP, probed with only `--helper` (the helper in the lab's
    transit, the probe locating itself), scored against the lab's labels as `netvigil
    evaluate --lab` does: every (network, service, round) unit right."""
    res = scored(technique_run, scenario, tmp_path)
    pairs = res.confusion.pairs
    wrong = {k: n for k, n in pairs.items() if k[0] != k[1]}
    assert sum(pairs.values()) > 0 and not wrong, "\n".join(res.lines())
    labelled = {e for (e, _p) in pairs if e != "ok"}
    assert labelled or scenario == "vpn-blocked", "\n".join(res.lines())  # vpn-blocked: the VPN path's score
    if scenario == "vpn-blocked":
        assert res.vpn.tp > 0 and res.vpn.fp == 0, "\n".join(res.lines())


def test_throttle_rates_identified_at_128_and_400(technique_run):
    for service in ("twitter", "facebook"):
        f = verdict(technique_run, "throttle-rates", service)
        assert f.technique == "throttled.targeted", (service, f)
    for service in ("twitter", "facebook", "telegram"):
        assert verdict(technique_run, "throttle-rates", service, when=BEFORE).klass == "ok", service
