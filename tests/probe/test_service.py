"""The service experiment against real loopback servers: every endpoint, every address
(IPv4 and IPv6), QUIC, the throughput sample, controls, proxies and the envelope."""

from __future__ import annotations

import asyncio

import pytest
from servers import ADDR, LoopbackWorld, with_objects

from netvigil.model.measurement import Measurement, decode_measurement, encode_measurement, measurement_to_dict
from netvigil.probe.experiments import run_service
from netvigil.probe.proxy import parse_proxy
from netvigil.probe.runner import plan_services, run_probe
from netvigil.targets import load_catalogue

CAT = with_objects(load_catalogue())


def service(world, name="twitter", **settings) -> Measurement:
    return asyncio.run(run_service(world.settings(**settings), CAT, CAT.service(name)))


@pytest.fixture(scope="module")
def twitter(world) -> Measurement:
    return service(world, probe_cc="RU", probe_asn="AS12389", scenario_time="2022-02-26 09:00:00")


def test_every_endpoint_and_address(world, twitter):
    tk = twitter.test_keys
    domains = CAT.service("twitter").domains
    assert list(tk["endpoints"]) == domains
    for d in domains:
        ids = set(tk["endpoints"][d])
        tls = [h for h in tk["tls_handshakes"] if h["transaction_id"] in ids and h["server_name"] == d]
        addrs = {h["address"].rsplit(":", 1)[0] for h in tls}
        expected = {ADDR["good"], "[::1]"} if world.ipv6 else {ADDR["good"]}
        assert expected <= addrs, (d, addrs)  # IPv4 and IPv6 both tested
        assert all(h.get("failure") is None for h in tls)
        assert any(r["request"]["url"] == f"https://{d}/" and r["response"]["code"] == 200
                   for r in tk["requests"] if r["transaction_id"] in ids)
    # cleartext HTTP on :80 where the catalogue asks for it (block pages are injected there)
    plain = [r for r in tk["requests"] if r["request"]["url"] == "http://twitter.com/"]
    assert plain and all(r["response"]["code"] == 200 and r["request"]["x_transport"] == "tcp" for r in plain)
    assert not any(r["request"]["url"] == "http://api.twitter.com/" for r in tk["requests"])
    # every record belongs to an endpoint
    all_ids = {i for ids in tk["endpoints"].values() for i in ids}
    for key in ("queries", "tcp_connect", "tls_handshakes", "quic_handshakes", "requests", "throughput"):
        assert {x["transaction_id"] for x in tk[key]} <= all_ids, key


def test_quic_and_throughput(twitter):
    tk = twitter.test_keys
    quic = tk["quic_handshakes"]
    assert {q["server_name"] for q in quic} == {"twitter.com", "x.com"}
    assert all(q.get("failure") is None and q["network"] == "udp" and q["negotiated_protocol"] == "h3"
               for q in quic)
    samples = {t["server_name"]: t for t in tk["throughput"]}
    assert set(samples) == {"twitter.com", "abs.twimg.com"}
    for t in samples.values():
        assert t["bytes"] == t["expected_bytes"] == 100_000 and t["bits_per_second"] > 0
        assert t.get("failure") is None


def test_envelope(twitter):
    m = twitter
    assert m.test_name == "service" and m.input == "https://twitter.com/"
    assert m.probe_ip == "127.0.0.1" and m.probe_cc == "RU" and m.probe_asn == "AS12389"
    assert m.measurement_start_time == m.test_start_time == "2022-02-26 09:00:00"
    assert m.annotations["service"] == "twitter" and m.annotations["path"] == "direct"
    assert m.annotations["wallclock_start"] != "2022-02-26 09:00:00"
    assert m.annotations["catalogue_version"] == CAT.version
    assert m.report_id.split("_")[1:4] == ["service", "RU", "12389"]
    again = decode_measurement(encode_measurement(m))  # validates
    assert measurement_to_dict(again) == measurement_to_dict(m)


def test_probe_ip_never_stored(world, twitter):
    import socket

    blob = encode_measurement(twitter).decode()
    own = {socket.gethostbyname(socket.gethostname())} - {"127.0.0.1"}
    for ip in own:
        assert ip not in blob


def test_timestamps_are_monotonic(twitter):
    for e in twitter.test_keys["network_events"]:
        assert 0 <= e["t0"] <= e["t"] <= twitter.test_runtime + 1e-6


def test_throttled_sample_rate(world):
    """A server pacing the sample at 400 kbit/s: the measured rate is within 20%. Its address
    answers QUIC too, so the run waits on the paced samples, not on QUIC handshake timeouts."""
    with LoopbackWorld(routes={d: "throttled" for d in CAT.service("twitter").domains},
                       throttle_bps=400_000, quic=("good", "throttled")) as slow:
        m = service(slow, sample_seconds=1.5, sample_bytes=1_000_000)
    rates = [t["bits_per_second"] for t in m.test_keys["throughput"]]
    assert len(rates) == 2
    for rate in rates:
        assert 0.8 * 400_000 <= rate <= 1.2 * 400_000, rate
    for t in m.test_keys["throughput"]:
        assert 0.8 * 400_000 <= t["x_tail_bits_per_second"] <= 1.2 * 400_000
        progress = t["x_progress"]
        assert 3 <= len(progress) <= 32 and progress[-1][1] == t["bytes"]
        assert all(a[0] <= b[0] and a[1] < b[1] for a, b in zip(progress, progress[1:]))
    assert all(t["bytes"] < 1_000_000 for t in m.test_keys["throughput"])  # time-bounded


def test_controls_same_run(world):
    out: list[Measurement] = []
    services = plan_services(CAT, ["twitter"], True)
    assert services == ["twitter", "control"]
    n = asyncio.run(run_probe(world.settings(), CAT, services=services, urls=["https://good.test/"],
                              sink=out.append))
    assert n == 3
    by = {m.annotations.get("service") or m.test_name: m for m in out}
    assert set(by) == {"twitter", "control", "web"}
    assert len({m.annotations["run_id"] for m in out}) == 1
    assert by["control"].input == "https://example.com/"
    # the real example.com serves neither an object of known size nor HTTP/3: not asked for
    assert by["control"].test_keys["throughput"] == [] and by["control"].test_keys["quic_handshakes"] == []


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_proxy_path(world, kind):
    url = world.socks5_url if kind == "socks5" else world.http_proxy_url
    before = world.proxied
    m = service(world, proxy=parse_proxy(url), path="proxy")
    tk = m.test_keys
    assert m.annotations["path"] == "proxy"
    assert tk["queries"] == []  # the proxy resolves names
    assert len(tk["tls_handshakes"]) == 9 + 2  # every endpoint, plus the two samples' connections
    assert all(h.get("failure") is None for h in tk["tls_handshakes"])
    assert len(tk["throughput"]) == 2 and all(t["bytes"] == t["expected_bytes"] for t in tk["throughput"])
    assert {c["ip"] for c in tk["tcp_connect"]} == {url.split("//")[1].rsplit(":", 1)[0]}
    assert world.proxied - before >= 9
    assert any(e["operation"] == "proxy_connect" for e in tk["network_events"])


def test_proxy_unknown_host_fails_cleanly(world):
    from netvigil.probe.experiments import run_web

    m = asyncio.run(run_web(world.settings(proxy=parse_proxy(world.socks5_url)), "https://nope.test/"))
    ev = [e for e in m.test_keys["network_events"] if e["operation"] == "proxy_connect"]
    assert ev[0]["failure"] == "host_unreachable"
    assert m.test_keys["tls_handshakes"] == []


def test_tor_dirauth_endpoints_are_connects_only():
    tor = CAT.service("tor")
    dirauths = [e for e in tor.endpoints if e.role == "dirauth"]
    assert all(e.protocols == ("tcp",) for e in dirauths)  # no DNS/TLS to an IP:port endpoint
