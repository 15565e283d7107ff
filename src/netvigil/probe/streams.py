"""TCP connect and a traced byte stream over our own non-blocking socket.

Every read and write is a df-008 network event with its bytes, timings and failure, so a
handshake that stalls after the ClientHello, or bytes trickling in before a timeout, are
visible in the measurement.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from netvigil.model.measurement import TCPConnect, TCPStatus
from netvigil.probe import failures
from netvigil.probe.trace import Trace

READ_SIZE = 65536


def join_host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class Stream:
    """A connected socket; read/write record network events (at most `max_events`)."""

    def __init__(self, sock: socket.socket, trace: Trace, tid: int | None, address: str,
                 max_events: int = 256):
        self.sock = sock
        self.trace = trace
        self.tid = tid
        self.address = address
        self.loop = asyncio.get_running_loop()
        self.bytes_read = 0
        self.bytes_written = 0
        self._events_left = max_events
        self.closed = False

    def _record(self, op: str, t0: float, failure: str | None, n: int | None) -> None:
        if self._events_left > 0 or failure:
            self._events_left -= 1
            self.trace.event(op, t0, address=self.address, failure=failure, num_bytes=n,
                             proto="tcp", tid=self.tid)

    async def write(self, data: bytes, timeout: float) -> None:
        t0 = self.trace.now()
        try:
            async with asyncio.timeout(timeout):
                await self.loop.sock_sendall(self.sock, data)
        except (OSError, TimeoutError) as exc:
            self._record("write", t0, failures.classify(exc), None)
            raise
        self.bytes_written += len(data)
        self._record("write", t0, None, len(data))

    async def read(self, timeout: float, size: int = READ_SIZE) -> bytes:
        """Up to `size` bytes; b"" at EOF (recorded as a read failing with eof_error)."""
        t0 = self.trace.now()
        try:
            async with asyncio.timeout(timeout):
                data = await self.loop.sock_recv(self.sock, size)
        except (OSError, TimeoutError) as exc:
            self._record("read", t0, failures.classify(exc), None)
            raise
        if not data:
            self._record("read", t0, failures.EOF_ERROR, None)
            return data
        self.bytes_read += len(data)
        self._record("read", t0, None, len(data))
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


async def tcp_connect(trace: Trace, ip: str, port: int, *, tid: int | None, timeout: float,
                      record: bool = True) -> Stream:
    """Connect to ip:port; records df-005 tcp_connect and a `connect` event. Raises on failure."""
    family = socket.AF_INET6 if ipaddress.ip_address(ip).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    address = join_host_port(ip, port)
    t0 = trace.now()
    trace.emit("started", "connect", address=address)
    failure = None
    try:
        async with asyncio.timeout(timeout):
            await asyncio.get_running_loop().sock_connect(sock, (ip, port))
    except (OSError, TimeoutError) as exc:
        failure = failures.classify(exc)
        sock.close()
        raise
    finally:
        trace.event("connect", t0, address=address, failure=failure, proto="tcp", tid=tid)
        if record:
            trace.tcp_connect.append(TCPConnect(
                ip=ip, port=port, status=TCPStatus(success=failure is None, failure=failure),
                t0=t0, t=trace.now(), transaction_id=tid))
        trace.emit("failed" if failure else "complete", "connect", address=address, failure=failure)
    return Stream(sock, trace, tid, address)
