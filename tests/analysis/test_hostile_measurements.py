"""Measurements whose test_keys have the wrong shapes (the format leaves them free-form):
the analysis gives `unknown` with the reason, never an exception."""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netvigil.analysis.verdicts.engine import verdicts
from netvigil.model.measurement import measurement_from_dict
from tests.analysis.factory import at, round_of
import msgspec

BASE = [msgspec.to_builtins(m) for m in round_of(at(0), techniques={"twitter": "tls.reset_after_hello"})]
JUNK = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(allow_nan=True), st.booleans(),
                 st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
KEYS = st.sampled_from(["queries", "tcp_connect", "tls_handshakes", "requests", "network_events",
                                  "throughput", "endpoints", "control", "targets", "answers", "status", "response",
                                  "request", "failure", "address", "t", "t0", "num_bytes", "bits_per_second",
                                  "server_name", "hostname", "ip", "port", "body", "headers", "code", "ipv4", "dns", "addrs",
                       "http_request", "tcp_connect", "annotations"])


def mutate(obj, key, value, every):
    """Replace the values of `key` wherever it occurs (every n-th occurrence)."""
    count = [0]

    def walk(o):
        if isinstance(o, dict):
            for k in list(o):
                if k == key:
                    count[0] += 1
                    if count[0] % every == 0:
                        o[k] = value
                        continue
                walk(o[k])
        elif isinstance(o, list):
            for x in o:
                walk(x)
    walk(obj)
    return obj


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(BASE) - 1), key=KEYS, value=JUNK, every=st.integers(1, 3))
def test_wrong_shapes_never_raise(which, key, value, every):
    raw = copy.deepcopy(BASE)
    raw[which]["test_keys"] = mutate(raw[which]["test_keys"], key, value, every)
    ms = [measurement_from_dict(r) for r in raw]
    vs = list(verdicts(ms))
    assert len(vs) == len(ms)
    for v in vs:
        json.dumps(msgspec.to_builtins(v))  # the record stays serialisable


@settings(max_examples=100, deadline=None)
@given(which=st.integers(0, len(BASE) - 1), key=st.sampled_from(["service", "path", "run_id"]), value=JUNK)
def test_wrong_annotation_shapes_never_raise(which, key, value):
    raw = copy.deepcopy(BASE)
    raw[which]["annotations"][key] = value
    vs = list(verdicts([measurement_from_dict(r) for r in raw]))
    assert len(vs) == len(raw)
    assert all(v.service is None or isinstance(v.service, str) for v in vs)
