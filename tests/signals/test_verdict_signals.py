"""Fusion over netvigil's own verdicts: the lab's outage and censorship shapes, in records."""

from __future__ import annotations

from netvigil.model.signals import parse_utc, utc_text
from netvigil.analysis.signals_verdicts import network_signals, outage_calls
from netvigil.model.records import Verdict

STEP = 300  # a probe round every 5 minutes
T0 = 1_764_000_000 - 1_764_000_000 % STEP


def verdict(i, asn, service, klass, path="direct", r=0):
    return Verdict(measurement_uid=f"{asn}-{service}-{i}-{r}-{path}",
                   measurement_start_time=utc_text(T0 + i * STEP + 10), probe_cc="RU",
                   probe_asn=asn, service=service, input=None, domain=None, klass=klass, path=path)


def rounds(asn, n, service_class=lambda i: "ok", control_class=lambda i: "ok", skip=()):
    out = []
    for i in range(n):
        if i in skip:
            continue  # the probe could not submit: silence
        for r in range(2):  # two probes per network
            out.append(verdict(i, asn, "twitter", service_class(i), r=r))
            out.append(verdict(i, asn, "control", control_class(i), r=r))
    return out


def test_isp_outage_and_block_on_another_isp_are_told_apart():
    down = set(range(30, 40))
    vs = rounds("AS1", 50, skip=down)  # uplink down: nothing arrives for 10 rounds
    vs += rounds("AS2", 50, service_class=lambda i: "tls" if i >= 30 else "ok")
    vs += [verdict(i, "AS2", "twitter", "ok", path="vpn") for i in range(30, 50)]
    calls = {c.key: c for c in outage_calls(vs, STEP, end=T0 + 49 * STEP)}
    assert calls["RU/AS1"].call == "outage"
    (iv,) = calls["RU/AS1"].outage_intervals
    assert (iv.onset_ts, iv.end_ts) == (T0 + 30 * STEP, T0 + 40 * STEP)
    assert calls["RU/AS2"].call == "censorship"
    assert calls["RU/AS2"].censorship_buckets == 20


def test_controls_failing_while_volume_continues_is_an_outage():
    vs = rounds("AS3", 40, service_class=lambda i: "tcp" if i >= 30 else "ok",
                control_class=lambda i: "outage" if i >= 30 else "ok")
    (call,) = outage_calls(vs, STEP)
    assert call.call == "outage"
    assert "outage.control.unreachable" in call.rule_ids


def test_network_that_goes_silent_at_the_end_is_seen_with_an_end_bound():
    vs = rounds("AS4", 30)
    (quiet,) = outage_calls(vs, STEP, end=T0 + 40 * STEP)
    assert quiet.call == "outage" and quiet.outage_intervals[0].end is None
    (unbounded,) = outage_calls(vs, STEP)
    assert unbounded.call == "none"


def test_network_signals_counts():
    sig = network_signals(rounds("AS5", 3), STEP)[("RU", "AS5")]
    assert sig.volume == {T0: 4, T0 + STEP: 4, T0 + 2 * STEP: 4}
    assert sig.control == [(T0 + i * STEP, 2, 2) for i in range(3)]


def test_the_same_calls_from_aggregates():
    from collections import Counter

    from netvigil.analysis.signals_verdicts import outage_calls_from_aggregates
    from netvigil.model.records import AggregateRow

    vs = rounds("AS1", 50, skip=set(range(30, 40)))
    vs += rounds("AS2", 50, service_class=lambda i: "tls" if i >= 30 else "ok")
    groups: dict = {}
    for v in vs:
        ts = parse_utc(v.measurement_start_time)
        bucket = utc_text(ts - ts % STEP)
        groups.setdefault((bucket, v.probe_asn, v.service), Counter())[v.klass] += 1
    rows = [AggregateRow(bucket=b, country="RU", asn=asn, service=svc, total=sum(c.values()),
                         counts=dict(c), techniques={}) for (b, asn, svc), c in groups.items()]
    calls = {c.key: c.call for c in outage_calls_from_aggregates(rows, STEP, end=T0 + 49 * STEP)}
    assert calls == {"RU/AS1": "outage", "RU/AS2": "censorship"}
