"""Outage or censorship per network from netvigil's own verdicts (`netvigil outages`): the
lab's outage and censorship shapes, in records, through the incidents' spans."""

from __future__ import annotations

from netvigil.analysis.outages.calls import measured_buckets, network_calls
from netvigil.analysis.rules import load_rules
from netvigil.model.records import Verdict
from netvigil.model.times import utc_text

STEP = 300  # a probe round every 5 minutes
T0 = 1_764_000_000 - 1_764_000_000 % STEP
PARAMS = load_rules().incidents


def verdict(i, asn, service, klass, path="direct", r=0):
    technique = {"tls": "tls.reset_after_hello", "outage": "outage"}.get(klass)
    return Verdict(measurement_uid=f"{asn}-{service}-{i}-{r}-{path}",
                   measurement_start_time=utc_text(T0 + i * STEP), probe_cc="RU",
                   probe_asn=asn, service=service, input=None, domain=None, klass=klass,
                   technique=technique, path=path,
                   rule_ids=["context.controls_failed_too"] if klass == "outage" else [])


def rounds(asn, n, service_class=lambda i: "ok", control_class=lambda i: "ok", skip=()):
    out = []
    for i in range(n):
        if i in skip:
            continue  # the probe could not submit: silence
        for r in range(2):  # two probes per network
            out.append(verdict(i, asn, "twitter", service_class(i), r=r))
            out.append(verdict(i, asn, "control", control_class(i), r=r))
    return out


def calls_of(vs, end=None):
    return {c.key: c for c in network_calls(sorted(vs, key=lambda v: v.measurement_start_time), PARAMS, STEP,
                                            end=end)}


def test_isp_silence_and_block_on_another_isp_are_told_apart():
    vs = rounds("AS1", 50, skip=set(range(30, 40)))  # uplink down: nothing arrives for 10 rounds
    vs += rounds("AS2", 50, service_class=lambda i: "tls" if i >= 30 else "ok")
    vs += [verdict(i, "AS2", "twitter", "ok", path="vpn") for i in range(30, 50)]
    calls = calls_of(vs)
    assert calls["RU/AS1"].call == "outage" and "outage.volume.silence" in calls["RU/AS1"].rule_ids
    (span,) = calls["RU/AS1"].outage_spans
    assert (span.start, span.end) == (utc_text(T0 + 30 * STEP), utc_text(T0 + 40 * STEP))
    assert calls["RU/AS1"].outage_bucket_starts == [T0 + i * STEP for i in range(30, 40)]
    assert calls["RU/AS2"].call == "censorship"
    assert calls["RU/AS2"].censored_bucket_starts == [T0 + i * STEP for i in range(30, 50)]
    assert not calls["RU/AS2"].outage_bucket_starts


def test_rounds_judged_outage_are_an_outage_and_not_censorship():
    vs = rounds("AS3", 40, service_class=lambda i: "outage" if 30 <= i < 35 else "ok",
                control_class=lambda i: "outage" if 30 <= i < 35 else "ok")
    (call,) = calls_of(vs).values()
    assert call.call == "outage" and not call.censored_bucket_starts
    assert call.outage_bucket_starts == [T0 + i * STEP for i in range(30, 35)]
    assert "context.controls_failed_too" in call.rule_ids


def test_one_outage_round_opens_no_span_as_in_the_incidents():
    vs = rounds("AS6", 40, service_class=lambda i: "outage" if i == 30 else "ok",
                control_class=lambda i: "outage" if i == 30 else "ok")
    (call,) = calls_of(vs).values()
    assert call.call == "none" and not call.outage_bucket_starts


def test_network_that_goes_silent_at_the_end_is_seen_with_an_end_bound():
    vs = rounds("AS4", 30)
    (quiet,) = calls_of(vs, end=T0 + 40 * STEP).values()
    assert quiet.call == "outage" and quiet.outage_spans[0].end is None
    (unbounded,) = calls_of(vs).values()
    assert unbounded.call == "none"


def test_measured_buckets():
    assert measured_buckets(rounds("AS5", 3), STEP) == {("RU", "AS5"): {T0, T0 + STEP, T0 + 2 * STEP}}
    assert network_calls([], PARAMS, STEP) == []
