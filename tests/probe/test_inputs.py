"""Hostile inputs to the probe's parsers: any text gives a value or a one-line UsageError,
never another exception; plus the system resolver (getaddrinfo) on localhost."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.errors import UsageError
from netvigil.probe import failures
from netvigil.probe.dns import system_lookup
from netvigil.probe.proxy import parse_proxy
from netvigil.probe.settings import parse_port_map, parse_resolver
from netvigil.probe.trace import Trace
from netvigil.targets import load_test_list
from netvigil.targets.testlists import check_url


def _one_line_or_value(fn, text):  # noqa: ANN001, ANN202
    try:
        return fn(text)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_parsers_never_crash(text):
    for fn in (parse_resolver, parse_port_map, parse_proxy, check_url):
        _one_line_or_value(fn, text)


def test_parse_resolver_forms():
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver("127.0.0.1") == ("127.0.0.1", 53)
    assert parse_resolver("[::1]:5353") == ("::1", 5353)
    assert parse_resolver("::1") == ("::1", 53)
    assert parse_port_map("443=8443, 80=8080") == {443: 8443, 80: 8080}
    assert str(parse_proxy("socks5h://127.0.0.1:9050")) == "socks5://127.0.0.1:9050"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_test_list_garbage(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("l") / "list.csv"
    path.write_bytes(data)
    entries = _one_line_or_value(load_test_list, path)
    assert entries is None or all(e.url.startswith(("http://", "https://")) for e in entries)


def test_failure_mapping_is_data():
    import errno
    import ssl

    assert failures.classify(ConnectionResetError(errno.ECONNRESET, "x")) == "connection_reset"
    assert failures.classify(ConnectionRefusedError(errno.ECONNREFUSED, "x")) == "connection_refused"
    assert failures.classify(OSError(errno.EHOSTUNREACH, "x")) == "host_unreachable"
    assert failures.classify(OSError(errno.ENETUNREACH, "x")) == "network_unreachable"
    assert failures.classify(TimeoutError()) == "generic_timeout_error"
    assert failures.classify(ssl.SSLEOFError()) == "eof_error"
    assert failures.classify(ValueError("x")) == "unknown_failure: ValueError"
    assert failures.from_rcode("NXDOMAIN") == "dns_nxdomain_error"
    assert failures.from_rcode("SERVFAIL") == "dns_servfail_error"
    assert failures.version()


def test_system_resolver_localhost():
    """getaddrinfo (no --resolver) on localhost: /etc/hosts, no network."""
    async def go():
        trace = Trace()
        addrs = await system_lookup(trace, "localhost", tid=trace.new_id("localhost"), timeout=5)
        return trace, addrs

    trace, addrs = asyncio.run(go())
    assert set(addrs) & {"127.0.0.1", "::1"}
    q = trace.queries[0]
    assert q.engine == "getaddrinfo" and q.query_type == "ANY" and q.failure is None


def test_trace_event_cap():
    trace = Trace(max_events=3)
    for _ in range(5):
        trace.event("read", trace.now(), num_bytes=1)
    assert len(trace.network_events) == 3 and trace.dropped_events == 2


def test_system_nameserver(tmp_path):
    from netvigil.probe.dns import system_nameserver

    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch lab\nnameserver not-an-ip\nnameserver fe80::1%eth0\nnameserver 10.0.0.1\n")
    assert system_nameserver(str(conf)) == ("fe80::1", 53)
    conf.write_text("options ndots:1\n")
    assert system_nameserver(str(conf)) is None
    assert system_nameserver(str(tmp_path / "missing")) is None
