"""netvigil._io: the one free_port and the one 'readable yet?' wait the packages share."""

from __future__ import annotations

import fcntl
import os
import resource
import socket

import pytest

from netvigil._io import free_port, readable


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


def test_readable_sees_data_and_eof_and_never_waits_at_zero():
    r, w = os.pipe()
    try:
        assert not readable(r)
        assert not readable(r, 0.01)
        os.write(w, b"x")
        assert readable(r)
        assert os.read(r, 1) == b"x"
        assert not readable(r)
        os.close(w)
        w = -1
        assert readable(r)  # EOF counts: the reader learns the writer is gone
        assert os.read(r, 1) == b""
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_readable_takes_a_file_object():
    r, w = os.pipe()
    with os.fdopen(r, "rb") as fh, os.fdopen(w, "wb") as out:
        assert not readable(fh)
        out.write(b"line\n")
        out.flush()
        assert readable(fh)


def test_readable_on_a_descriptor_past_1023():
    """select() raises ValueError there; the suite in one process reaches such numbers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"descriptor limit {soft}/{hard} too low")
    if soft < 1100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1100, hard))
    r, w = os.pipe()
    high = fcntl.fcntl(r, fcntl.F_DUPFD, 1024)  # the lowest free one past 1023: clobbers nothing
    try:
        assert not readable(high)
        os.write(w, b"x")
        assert readable(high)
    finally:
        for fd in (high, r, w):
            os.close(fd)
        if soft < 1100:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_module_imports_nothing_of_netvigil():
    """It sits under every package (docs/architecture.md): an import of netvigil here could
    close a cycle the package graph test does not see (top-level modules are outside it)."""
    import ast

    import netvigil._io as mod
    from tests.test_architecture import _imported_modules

    assert _imported_modules(ast.parse(open(mod.__file__).read()), ["_io"]) == set()
