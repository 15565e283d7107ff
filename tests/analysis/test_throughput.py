"""The SNI-keyed throughput rule (analysis/verdicts/throughput.py) on synthetic helper tests: the KS
test itself, targeted throttling in each direction, a slow network, and helpers that are
down, lie or reset both SNIs (a measurement failure, never a throttled verdict)."""

from __future__ import annotations

import random
from math import comb

import pytest

from netvigil.analysis.verdicts.finding import Finding
from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.throughput import helper_evidence, ks_pvalue, ks_statistic
from netvigil.analysis.verdicts.engine import judge
from netvigil.model.measurement import Measurement

RULES = load_rules()
N = 24_000


def flow(rate_bps: float, nbytes: int = N, every: float = 0.05, jitter: float = 0.0,
         rng: random.Random | None = None) -> list[list[float]]:
    """The arrival curve of a flow at a steady rate, sampled every `every` seconds."""
    pts, t, got = [], 0.0, 0
    rng = rng or random.Random(0)
    while got < nbytes:
        dt = every
        rate = rate_bps * (1 + rng.uniform(-jitter, jitter))
        got = min(nbytes, got + int(rate * dt / 8) + 1)
        t += dt if got < nbytes else (nbytes - pts[-1][1] if pts else nbytes) * 8 / rate if rate else dt
        pts.append([round(t, 6), got])
    return pts


def transfer(rnd: int, role: str, direction: str, samples, *, nbytes: int = N, failure=None, op=None,
             transport: str = "tcp") -> dict:
    sni = "twitter.com" if role == "target" else "example.com"
    return {"round": rnd, "role": role, "sni": sni, "direction": direction, "transport": transport,
            "expected_bytes": nbytes, "bytes": samples[-1][1] if samples else 0, "t0": 0.1, "t": 2.0,
            "samples": samples, "failure": failure, "failed_operation": op}


def keys_for(target_rate: dict[str, float], control_rate: dict[str, float], rounds: int = 2, jitter: float = 0.1,
              seed: int = 1, **extra) -> dict:
    rng = random.Random(seed)
    transfers = [transfer(r, role, d, flow((target_rate if role == "target" else control_rate)[d], jitter=jitter, rng=rng))
                 for r in range(rounds) for d in ("download", "upload") for role in ("target", "control")]
    return {"x_sni_throughput": {"helper": "192.0.2.10:443", "target_sni": "twitter.com", "control_sni": "example.com",
                                 "rounds": rounds, "transfers": transfers, **extra}}


def ok() -> Finding:
    return Finding("ok", None, 0.9, rule_ids=["service.all_endpoints_ok"])


def test_ks_statistic_and_exact_pvalue():
    assert ks_statistic([1, 2, 3], [4, 5, 6]) == 1.0
    assert ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    # complete separation of n and m values: only 2 of the C(n+m, n) orderings are as extreme
    assert ks_pvalue(1.0, 5, 5) == pytest.approx(2 / comb(10, 5))
    assert ks_pvalue(1.0, 30, 2) == pytest.approx(2 / comb(32, 2))
    assert ks_pvalue(0.0, 5, 5) == 1.0
    # large samples use Kolmogorov's limit: D = 0.2 with n = m = 300 is p ~ 1e-5
    assert ks_pvalue(0.2, 300, 300) < 1e-4 and ks_pvalue(0.05, 300, 300) > 0.5


def test_targeted_throttling_both_directions_rates():
    tk = keys_for({"download": 128_000, "upload": 150_000}, {"download": 20e6, "upload": 20e6})
    f = helper_evidence(tk, ok(), RULES)
    assert f.technique == "throttled.targeted" and f.klass == "throttled"
    assert 0.9 * 128_000 <= f.rate_bps <= 1.1 * 128_000
    assert {"helper.sni_throttled:download", "helper.sni_throttled:upload"} <= set(f.rule_ids)
    up = next(r for r in f.rule_ids if r.startswith("helper.rate_bps:upload="))
    assert 0.9 * 150_000 <= float(up.split("=")[1]) <= 1.1 * 150_000


def test_download_only_throttling_is_still_targeted():
    f = helper_evidence(keys_for({"download": 140_000, "upload": 20e6}, {"download": 20e6, "upload": 20e6}), ok(), RULES)
    assert f.technique == "throttled.targeted" and f.rule_ids[0] == "helper.sni_throttled:download"


def test_slow_network_is_not_targeted_but_gives_the_rate():
    f = helper_evidence(keys_for({"download": 1e6, "upload": 1e6}, {"download": 1e6, "upload": 1e6}), ok(), RULES)
    assert f.klass == "ok" and "helper.rate_measured" in f.rule_ids
    assert 0.85e6 <= f.rate_bps <= 1.15e6  # the round context compares it with the network's history


def test_no_false_throttling_over_200_noisy_tests():
    """Both SNIs drawn from the same noisy network (rates from 0.3 to 30 Mbit/s, +-60% per
    interval): the rule must never call it targeted."""
    rng = random.Random(7)
    calls = []
    for i in range(200):
        base = 10 ** rng.uniform(5.5, 7.5)
        tk = keys_for({"download": base, "upload": base}, {"download": base, "upload": base}, jitter=0.6, seed=i)
        calls.append(helper_evidence(tk, ok(), RULES).technique)
    assert calls.count("throttled.targeted") == 0


def test_helper_down_is_a_measurement_failure():
    tk = {"x_sni_throughput": {"helper": None, "target_sni": "twitter.com", "control_sni": "example.com",
                               "failure": "helper_unreachable: connection_refused", "helpers_tried": ["192.0.2.10:443"]}}
    f = helper_evidence(tk, ok(), RULES)
    assert f.klass == "ok" and "helper.failed:helper_unreachable: connection_refused" in f.rule_ids


def test_lying_helper_short_target_transfers_never_throttled():
    tk = keys_for({"download": 20e6, "upload": 20e6}, {"download": 20e6, "upload": 20e6})
    for t in tk["x_sni_throughput"]["transfers"]:
        if t["role"] == "target":  # the helper sent a tenth of the bytes, slowly, then stopped
            t["samples"] = flow(50_000, nbytes=N // 10)
            t["bytes"] = N // 10
            t["failure"], t["failed_operation"] = "unknown_failure: short_transfer", "read"
    f = helper_evidence(tk, ok(), RULES)
    assert f.klass == "ok" and f.technique is None


def test_lying_helper_short_control_is_a_failure():
    tk = keys_for({"download": 128_000, "upload": 128_000}, {"download": 20e6, "upload": 20e6})
    for t in tk["x_sni_throughput"]["transfers"]:
        if t["role"] == "control":
            t["bytes"] = 100  # claims fewer bytes than asked without a failure: not usable
    f = helper_evidence(tk, ok(), RULES)
    assert f.klass == "ok" and any(r.startswith("helper.failed:control_") for r in f.rule_ids)


def test_reset_on_both_snis_is_a_failure_not_a_verdict():
    tk = keys_for({"download": 1e6, "upload": 1e6}, {"download": 1e6, "upload": 1e6})
    for t in tk["x_sni_throughput"]["transfers"]:
        t.update(samples=[], bytes=0, failure="connection_reset", failed_operation="tls_handshake")
    f = helper_evidence(tk, ok(), RULES)
    assert f.klass == "ok" and "helper.failed:control_connection_reset" in f.rule_ids


def test_reset_only_with_the_target_sni_is_sni_keyed_blocking():
    tk = keys_for({"download": 1e6, "upload": 1e6}, {"download": 20e6, "upload": 20e6})
    for t in tk["x_sni_throughput"]["transfers"]:
        if t["role"] == "target":
            t.update(samples=[], bytes=0, failure="connection_reset", failed_operation="tls_handshake")
    f = helper_evidence(tk, ok(), RULES)
    assert f.technique == "tls.reset_after_hello" and f.rule_ids == ["helper.sni_handshake:connection_reset"]


def quic(target_failure, control_failure) -> list[dict]:
    return [transfer(0, "target", "download", [[0.05, 2000]] if not target_failure else [], nbytes=2000,
                     failure=target_failure, op="quic_handshake" if target_failure else None, transport="quic"),
            transfer(0, "control", "download", [[0.05, 2000]] if not control_failure else [], nbytes=2000,
                     failure=control_failure, op="quic_handshake" if control_failure else None, transport="quic")]


def test_quic_fails_with_both_snis_is_not_targeted():
    tk = keys_for({"download": 20e6, "upload": 20e6}, {"download": 20e6, "upload": 20e6},
                   quic=quic("generic_timeout_error", "generic_timeout_error"))
    found = Finding("quic", "quic.blocked", 0.5, rule_ids=["quic.failure:generic_timeout_error"])
    f = helper_evidence(tk, found, RULES)
    assert f.klass == "ok" and "helper.quic_fails_for_control_sni_too" in f.rule_ids


def test_quic_fails_only_with_target_sni():
    tk = keys_for({"download": 20e6, "upload": 20e6}, {"download": 20e6, "upload": 20e6},
                   quic=quic("generic_timeout_error", None))
    f = helper_evidence(tk, ok(), RULES)
    assert f.technique == "quic.blocked" and f.rule_ids == ["helper.quic_sni_keyed:generic_timeout_error"]


def test_malformed_extension_is_ignored():
    for bad in ({"x_sni_throughput": "garbage"}, {"x_sni_throughput": {"helper": 3}},
                {"x_sni_throughput": {"helper": "h:1", "target_sni": "a", "control_sni": "b", "transfers": [{"x": 1}]}}):
        f = helper_evidence(bad, ok(), RULES)
        assert f.klass == "ok" and f.technique is None


def test_judge_uses_the_extension():
    tk = keys_for({"download": 128_000, "upload": 128_000}, {"download": 20e6, "upload": 20e6})
    m = Measurement(test_name="service", test_version="0.1.0", measurement_start_time="2022-03-01 09:00:00",
                    probe_cc="RU", probe_asn="AS65001", input="https://twitter.com/", test_keys=tk,
                    annotations={"service": "twitter"})
    f = judge(m, RULES)
    assert f.technique == "throttled.targeted" and 100_000 < f.rate_bps < 160_000


def test_round_context_does_not_override_the_helper_test():
    """The service's flows equal its control flows (no SNI difference) but were measured at
    a slow moment, the control measurement's at a fast one: not targeted throttling."""
    from netvigil.analysis.verdicts.engine import verdict_stream

    def m(service: str, rate: float) -> Measurement:
        tk = keys_for({"download": rate, "upload": rate}, {"download": rate, "upload": rate})
        tk.update(queries=[], tcp_connect=[], tls_handshakes=[], requests=[], throughput=[], endpoints={})
        if service == "control":
            for t in tk["x_sni_throughput"]["transfers"]:
                t["role"], t["sni"] = "control", "example.com"
        return Measurement(test_name="service", test_version="0.1.0", measurement_start_time="2022-03-01 09:00:00",
                           probe_cc="RU", probe_asn="AS65001", input=f"https://{service}.com/", test_keys=tk,
                           report_id=f"r-{service}", annotations={"service": service, "run_id": "run-1"})

    got = {mm.annotations["service"]: v for mm, v in verdict_stream([m("twitter", 600_000), m("control", 9e6)])}
    assert got["twitter"].klass != "throttled" and "helper.rate_measured" in got["twitter"].rule_ids


def test_fast_flows_give_no_network_rate():
    """Flows that arrived at once (one sample) bound the rate from below only: no rate is
    handed to the round context, where a busy moment would look like a slow network."""
    tk = keys_for({"download": 20e6, "upload": 20e6}, {"download": 20e6, "upload": 20e6})
    for t in tk["x_sni_throughput"]["transfers"]:
        t["samples"] = [[0.03, N]]
    f = helper_evidence(tk, ok(), RULES)
    assert f.klass == "ok" and f.rate_bps is None
