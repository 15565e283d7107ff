"""Our own probe's measurements (tests/data/netvigil, produced by the probe against loopback
servers with a censoring middlebox) get the technique the file name says, and the control
measurement of the same round is never called an outage (the loopback world has no
cleartext HTTP server: the controls' http:// fetches fail there, which must not make the
service's identical failure a block, nor the network an outage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netvigil.analysis.verdicts.engine import verdicts
from netvigil.ingest.ooni import read_measurements

DATA = Path(__file__).resolve().parent.parent / "data" / "netvigil"
EXPECTED = {
    "service_twitter.jsonl": None,
    "service_twitter_dns_injected.jsonl": "dns.injected",
    "service_twitter_nxdomain.jsonl": "dns.nxdomain",
    "service_twitter_rst_after_hello.jsonl": "tls.reset_after_hello",
    "service_twitter_throttled.jsonl": "throttled.targeted",
    "service_twitter_timeout_after_hello.jsonl": "tls.timeout_after_hello",
}


@pytest.mark.parametrize("name,technique", sorted(EXPECTED.items()))
def test_probe_sample(name, technique):
    path = DATA / name
    if not path.exists():
        pytest.skip(f"{name} not produced by the probe yet")
    vs = {v.service: v for v in verdicts(read_measurements([path]))}
    assert vs["control"].klass != "outage"
    assert vs["twitter"].technique == technique
    if technique == "throttled.targeted":
        assert 100_000 < vs["twitter"].rate_bps < 200_000  # the sample server's ~150 kbit/s
