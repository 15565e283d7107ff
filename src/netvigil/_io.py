"""Descriptor-level helpers shared by packages that must not import each other.

Top-level and free of netvigil imports, like errors.py, so the observatory, the lab and the
benchmarks can all use it without an import cycle (tests/test_architecture.py).
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A port nothing listens on now at `host` (TCP; with `udp`, free for UDP too, as a
    server on both, QUIC beside TLS say, needs). Another process may take it before the
    caller binds it: good enough for tests and benchmarks on loopback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            if not udp:
                return port
            with socket.socket(family, socket.SOCK_DGRAM) as dgram:
                try:
                    dgram.bind((host, port))
                except OSError:
                    continue  # taken for UDP: try another
                return port
    raise OSError(f"no port free for both TCP and UDP on {host} in 50 tries")

