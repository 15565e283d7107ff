"""Descriptor-level helpers shared by packages that must not import each other.

Top-level and free of netvigil imports, like errors.py, so the observatory, the lab and the
benchmarks can all use it without an import cycle (tests/test_architecture.py).
"""

from __future__ import annotations

import select
import socket
from typing import IO


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


def readable(fh: IO | int, timeout: float = 0.0) -> bool:
    """Something (or EOF) to read on `fh` (a file or a descriptor) within `timeout` seconds
    (0: now, without waiting). poll, not select(): select refuses a descriptor past 1023,
    as in a process with many files open (the whole suite in one process failed so)."""
    poller = select.poll()
    poller.register(fh, select.POLLIN)
    return bool(poller.poll(max(timeout, 0.0) * 1000))
