"""Circumvention paths: a SOCKS5 or HTTP CONNECT proxy in front of every TCP connection.

The proxy resolves the target name itself (socks5h semantics), so a local DNS block does
not decide the outcome of a proxied test; the tunnel set-up is traced like any step.
"""

from __future__ import annotations

import ipaddress
import struct
from urllib.parse import urlsplit

import msgspec

from netvigil.errors import UsageError
from netvigil.probe import failures
from netvigil.probe.streams import Stream, tcp_connect
from netvigil.probe.trace import Trace

_SOCKS_REPLIES = {1: "unknown_failure: socks_general_failure", 2: "connection_refused",
                  3: "network_unreachable", 4: "host_unreachable", 5: "connection_refused",
                  6: "generic_timeout_error", 7: "unknown_failure: socks_command_not_supported",
                  8: "address_family_not_supported"}


class ProxyURL(msgspec.Struct, frozen=True):
    scheme: str  # socks5 | http
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_proxy(url: str) -> ProxyURL:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"bad --proxy {url!r}: {exc}") from None
    scheme = {"socks5": "socks5", "socks5h": "socks5", "http": "http"}.get(parts.scheme)
    if not scheme or not parts.hostname:
        raise UsageError(f"bad --proxy {url!r}", hint="expected socks5://HOST:PORT or http://HOST:PORT")
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        raise UsageError(f"bad --proxy {url!r}: the proxy host must be an IP address") from None
    return ProxyURL(scheme=scheme, host=parts.hostname, port=port or (1080 if scheme == "socks5" else 8080))


async def _read_exact(stream: Stream, n: int, timeout: float) -> bytes:
    buf = b""
    while len(buf) < n:
        data = await stream.read(timeout, n - len(buf))
        if not data:
            raise failures.StepFailure(failures.EOF_ERROR, "proxy closed the connection")
        buf += data
    return buf


async def _socks5(stream: Stream, host: str, port: int, timeout: float) -> None:
    await stream.write(b"\x05\x01\x00", timeout)
    if await _read_exact(stream, 2, timeout) != b"\x05\x00":
        raise failures.StepFailure("unknown_failure: socks_auth_rejected")
    name = host.encode("idna")
    await stream.write(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port), timeout)
    head = await _read_exact(stream, 4, timeout)
    if head[1] != 0:
        raise failures.StepFailure(_SOCKS_REPLIES.get(head[1], "unknown_failure: socks_error"))
    atyp = head[3]
    rest = {1: 4, 4: 16}.get(atyp)
    if rest is None:
        rest = (await _read_exact(stream, 1, timeout))[0]
    await _read_exact(stream, rest + 2, timeout)


async def _http_connect(stream: Stream, host: str, port: int, timeout: float) -> None:
    await stream.write(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode(), timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = await stream.read(timeout, 4096)
        if not data:
            raise failures.StepFailure(failures.EOF_ERROR, "proxy closed the connection")
        buf += data
        if len(buf) > 16384:
            raise failures.StepFailure("unknown_failure: proxy_bad_response")
    status = buf.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        raise failures.StepFailure(f"unknown_failure: proxy_status_{status[1].decode() if len(status) > 1 else '?'}")


async def connect_via(proxy: ProxyURL, trace: Trace, host: str, port: int, *, tid: int,
                      timeout: float) -> Stream:
    """A stream to host:port through the proxy; records tcp_connect to the proxy and the
    tunnel as a `proxy_connect` event (failure = why the tunnel did not open)."""
    stream = await tcp_connect(trace, proxy.host, proxy.port, tid=tid, timeout=timeout)
    t0 = trace.now()
    failure = None
    try:
        if proxy.scheme == "socks5":
            await _socks5(stream, host, port, timeout)
        else:
            await _http_connect(stream, host, port, timeout)
    except BaseException as exc:
        failure = failures.classify(exc)
        stream.close()
        raise
    finally:
        trace.event("proxy_connect", t0, address=f"{host}:{port}", failure=failure, proto="tcp",
                    tid=tid, tags=[f"proxy={proxy.scheme}"])
    stream.address = f"{host}:{port}"
    return stream
