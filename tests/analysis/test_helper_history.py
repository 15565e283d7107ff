"""The network's rate history from the SNI-keyed helper test (analysis/verdicts/throughput.py and the
round context): a fast network's 20 KB flows end too soon to time, so they give a lower bound,
kept as history only; a generally slow network (every flow timed, slow) is then
`throttled.general`; another vantage's reference counts within the time window, not only at
the same second (real probes never share a start time). And QUIC: one timed-out handshake
followed by a success to the same address is transient, not `quic.blocked`."""

from __future__ import annotations

from datetime import datetime, timedelta

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.throughput import FLOOR, helper_evidence, rate_floor, read_test
from netvigil.analysis.verdicts.engine import verdicts
from tests.analysis.factory import round_of
from tests.analysis.test_throughput import flow, ok, transfer

RULES = load_rules()
T0 = datetime(2022, 3, 1, 8, 0, 0)
N = 20_000


def when(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S")


def fast() -> list[list[float]]:
    """A flow that ended at once: two points within 20 ms, too short to time (10+ Mbit/s)."""
    return [[0.004, 12_000], [0.012, N]]


def helper_keys(target: str, control_sni: str, curve) -> dict:  # noqa: ANN001
    roles = ["control"] if target == control_sni else ["target", "control"]
    ts = [transfer(r, role, d, curve(), nbytes=N) for r in range(3) for d in ("download", "upload") for role in roles]
    for t in ts:
        t["sni"] = target if t["role"] == "target" else control_sni
    return {"helper": "192.0.2.10:443", "target_sni": target, "control_sni": control_sni, "rounds": 3,
            "transfers": ts, "quic": [], "failure": None}


def with_helper(ms, curve):  # noqa: ANN001, ANN201
    """The round's measurements carrying a helper test whose flows all follow `curve`, and
    no catalogue-object sample (the helper is the only rate)."""
    for m in ms:
        target = "example.com" if m.annotations["service"] == "control" else "twitter.com"
        m.test_keys["throughput"] = []
        m.test_keys["x_sni_throughput"] = helper_keys(target, "example.com", curve)
    return ms


def slow() -> list[list[float]]:
    return flow(500_000, nbytes=N)  # 0.32 s at 500 kbit/s: timed


def judged(ms) -> dict[tuple[str, str, str], object]:  # noqa: ANN001
    return {(v.probe_asn, v.measurement_start_time, v.service): v for v in verdicts(ms, RULES)}


def test_a_fast_flow_gives_a_lower_bound_not_a_rate():
    test = read_test({"x_sni_throughput": helper_keys("example.com", "example.com", fast)})
    bound = rate_floor(test, "control", "download", RULES.thresholds["helper_rate_min_seconds"])
    assert bound == N * 8 / 0.012
    f = helper_evidence({"x_sni_throughput": helper_keys("example.com", "example.com", fast)}, ok(), RULES)
    assert f.rate_bps is None and f"{FLOOR}{bound:.0f}" in f.rule_ids and "helper.rate_measured" not in f.rule_ids
    timed = helper_evidence({"x_sni_throughput": helper_keys("example.com", "example.com", slow)}, ok(), RULES)
    assert timed.rate_bps is not None and 400_000 < timed.rate_bps < 600_000
    assert not any(r.startswith(FLOOR) for r in timed.rule_ids)


def test_general_slowness_against_a_history_of_lower_bounds():
    ms = [m for r in range(4) for m in with_helper(round_of(when(5 * r), "AS65001"), fast)]
    ms += with_helper(round_of(when(20), "AS65001"), slow)
    v = judged(ms)
    assert all(v[("AS65001", when(5 * r), s)].klass == "ok" for r in range(4) for s in ("twitter", "control"))
    ctl, tw = v[("AS65001", when(20), "control")], v[("AS65001", when(20), "twitter")]
    assert ctl.technique == "throttled.general" and tw.technique == "throttled.general", (ctl, tw)
    assert 400_000 < tw.rate_bps < 600_000


def test_no_history_no_general_verdict_and_fast_rounds_never_slow():
    # the slow round alone: no reference, no claim
    v = judged(with_helper(round_of(when(20), "AS65001"), slow))
    assert v[("AS65001", when(20), "control")].klass == "ok"
    # 12 fast rounds: only lower bounds, nothing judged slow
    ms = [m for r in range(12) for m in with_helper(round_of(when(5 * r), "AS65001"), fast)]
    assert all(x.klass == "ok" for x in verdicts(ms, RULES))


def test_another_vantage_in_the_same_window_is_the_reference():
    """The control vantage measured 3 minutes later (probes never share a start time)."""
    ms = with_helper(round_of(when(20), "AS65001"), slow)
    ms += with_helper(round_of(when(23), "AS64500", cc="ZZ", network="control vantage"), fast)
    v = judged(ms)
    assert v[("AS65001", when(20), "control")].technique == "throttled.general"
    # two hours apart: another window, no reference
    ms = with_helper(round_of(when(20), "AS65001"), slow)
    ms += with_helper(round_of(when(140), "AS64500", cc="ZZ", network="control vantage"), fast)
    assert judged(ms)[("AS65001", when(20), "control")].klass == "ok"


def quic_round(attempts: list[str | None]) -> list:
    ms = round_of(when(0), "AS65001")
    tw = ms[0]
    tls = tw.test_keys["tls_handshakes"][0]
    tid = tls["transaction_id"]
    tw.test_keys["quic_handshakes"] = [
        {"address": tls["address"], "server_name": tls["server_name"], "failure": f, "network": "udp",
         "alpn": ["h3"], "t0": 0.1, "t": 0.2, "transaction_id": tid} for f in attempts]
    return ms


def test_one_quic_timeout_then_success_is_transient_two_are_a_block():
    got = judged(quic_round(["generic_timeout_error", None]))[("AS65001", when(0), "twitter")]
    assert got.klass == "ok", got
    blocked = judged(quic_round(["generic_timeout_error", "generic_timeout_error"]))[("AS65001", when(0), "twitter")]
    assert blocked.technique == "quic.blocked", blocked


def test_a_stalled_flow_beside_fast_ones_is_no_rate():
    """One flow held back by the probe (0.7 s of nothing, then a burst: timed at ~160 kbit/s)
    while the test's other flows ended at once: the network was fast, not slow."""
    stalled = [[0.673, 4096], [1.394, 16384], [1.397, N]]
    keys = helper_keys("example.com", "example.com", fast)
    keys["transfers"][0]["samples"] = stalled
    f = helper_evidence({"x_sni_throughput": keys}, ok(), RULES)
    assert f.rate_bps is None and any(r.startswith(FLOOR) for r in f.rule_ids), f
    # the same stalled flow among flows as slow as itself is the network's rate
    keys = helper_keys("example.com", "example.com", lambda: flow(150_000, nbytes=N))
    keys["transfers"][0]["samples"] = stalled
    f = helper_evidence({"x_sni_throughput": keys}, ok(), RULES)
    assert f.rate_bps is not None and f.rate_bps < 400_000


def test_a_fast_flow_elsewhere_in_the_round_vetoes_general_slowness():
    """The control's flows all slow, the service's test in the same round moved fast: the
    probe was busy when the control ran, the network was not slow."""
    ms = [m for r in range(4) for m in with_helper(round_of(when(5 * r), "AS65001"), fast)]
    last = round_of(when(20), "AS65001")
    with_helper(last[:1], fast)  # twitter: fast flows
    with_helper(last[1:], slow)  # control: slow ones
    v = judged(ms + last)
    assert v[("AS65001", when(20), "control")].klass == "ok", v[("AS65001", when(20), "control")]
