"""netvigil._io: the one free_port the packages share."""

from __future__ import annotations

import socket

import pytest

from netvigil._io import free_port


def test_free_port_can_be_bound_for_tcp():
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()


def test_free_port_with_udp_is_free_for_both():
    port = free_port(udp=True)
    with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        t.bind(("127.0.0.1", port))
        u.bind(("127.0.0.1", port))


def test_free_port_on_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    try:
        port = free_port("::1")
    except OSError as exc:
        pytest.skip(f"::1 not usable here: {exc}")
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", port))


def test_the_observatory_and_benchmarks_use_the_same_free_port():
    from netvigil.observatory import serve

    assert serve.free_port is free_port

