"""What a probe calls on the test helper: download, upload, echo, OONI control.

Never raises on a network failure: a Transfer carries the OONI failure string and the step
that failed. A helper that lies (a short body, garbage, a wrong count, a reset) yields a
failure, never a rate, so it cannot look like a fast or a throttled link.

Times: `t_start` is when the request left (time.monotonic(), after connect and handshake),
`t_end` when the last byte arrived (download) or the helper's report did (upload). Download
samples are measured here; upload samples are measured by the helper where the bytes land
(seconds since it had the request head).
"""

from __future__ import annotations

import json
from typing import Literal

import msgspec

from netvigil.errors import UsageError
from netvigil.probe.helper_exchange import Exchange, Opened, tcp_exchange, tcp_open
from netvigil.model.helper_protocol import (
    BAD_RESPONSE,
    CONTROL_PATH,
    DOWNLOAD_PATH,
    ECHO_PATH,
    MAX_TRANSFER_BYTES,
    SHORT_TRANSFER,
    UPLOAD_PATH,
    EchoReport,
    UploadReport,
)

Transport = Literal["tcp", "quic"]
CLOCK_SLACK_S = 0.05
"""How far the helper's upload timings may exceed what the client saw (scheduling)."""


class HelperAddress(msgspec.Struct, frozen=True):
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HelperAddress:
        """"host:port", "[v6]:port" or "v4:port"; a UsageError that says what is wrong."""
        raw = text.strip()
        if raw.startswith("["):
            host, sep, port = raw[1:].partition("]:")
        else:
            host, sep, port = raw.rpartition(":")
            if ":" in host:
                sep = ""
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"helper address {text!r} is not HOST:PORT",
                             hint="e.g. helper.example.org:443, 127.0.0.1:4443 or [::1]:4443")
        return cls(host=host, port=int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Transfer(msgspec.Struct):
    """One SNI-keyed transfer with the helper; `bytes` counts verified payload only."""

    sni: str
    direction: str  # "download" | "upload"
    transport: str  # "tcp" | "quic"
    bytes: int
    t_start: float
    t_end: float
    samples: list[tuple[float, int]]
    failure: str | None = None
    failed_operation: str | None = None  # connect, tls_handshake, quic_handshake, read, write
    requested: int = 0
    handshake_s: float | None = None  # connect + TLS (or QUIC) handshake, when it completed


def _check_size(nbytes: int) -> None:
    if not 0 < nbytes <= MAX_TRANSFER_BYTES:
        raise ValueError(f"transfer size {nbytes} outside 1..{MAX_TRANSFER_BYTES} bytes")


async def connect(helper: HelperAddress, sni: str, *, timeout: float = 10.0) -> Opened:
    """A TLS/TCP connection with this SNI, made ahead of its download or upload (`opened=`):
    the SNI test opens all its flows' connections before the first transfer."""
    return await tcp_open(helper.host, helper.port, sni, timeout=timeout)


async def _exchange(helper: HelperAddress, sni: str | None, method: str, target: str,
                    body: bytes | int, *, timeout: float, transport: str, keep: int,
                    sample: bool = False, opened: Opened | None = None) -> Exchange:
    if transport not in ("tcp", "quic"):
        raise ValueError(f"transport must be 'tcp' or 'quic', not {transport!r}")
    if transport == "quic":
        if opened is not None:
            raise ValueError("an opened connection is TLS/TCP, not QUIC")
        from netvigil.probe.helper_h3 import quic_exchange  # aioquic, loaded when QUIC is first used

        return await quic_exchange(helper.host, helper.port, sni, method, target, body,
                                   timeout=timeout, keep=keep, sample=sample)
    return await tcp_exchange(helper.host, helper.port, sni, method, target, body, timeout=timeout,
                              keep=keep, sample=sample, opened=opened)


def _transfer(ex: Exchange, sni: str, direction: str, transport: str, nbytes: int) -> Transfer:
    return Transfer(sni=sni, direction=direction, transport=transport, bytes=0,
                    t_start=ex.t_start, t_end=ex.t_end, samples=[], failure=ex.failure,
                    failed_operation=ex.failed_operation, requested=nbytes,
                    handshake_s=round(ex.t_connect, 6) if ex.t_start else None)


def _fail(t: Transfer, failure: str, operation: str = "read") -> Transfer:
    t.failure, t.failed_operation = failure, operation
    return t


async def download(helper: HelperAddress, sni: str, nbytes: int, *, timeout: float = 10.0,
                   transport: Transport = "tcp", opened: Opened | None = None) -> Transfer:
    """GET /download?bytes=N with this SNI; samples of the bytes as they arrive here. On
    `opened` (from connect()) when given: `timeout` then bounds the request alone."""
    _check_size(nbytes)
    ex = await _exchange(helper, sni, "GET", f"{DOWNLOAD_PATH}?bytes={nbytes}", b"",
                         timeout=timeout, transport=transport, keep=0, sample=True, opened=opened)
    t = _transfer(ex, sni, "download", transport, nbytes)
    t.bytes = ex.body_bytes
    t.samples = ex.sampler.finish() if ex.sampler else []
    if t.failure is None:
        if ex.status != 200:
            return _fail(t, BAD_RESPONSE)
        if ex.body_bytes != nbytes:
            return _fail(t, SHORT_TRANSFER)
    return t


async def upload(helper: HelperAddress, sni: str, nbytes: int, *, timeout: float = 10.0,
                 transport: Transport = "tcp", opened: Opened | None = None) -> Transfer:
    """POST /upload of N bytes with this SNI; samples as the helper saw them arrive (on
    `opened` as download() does)."""
    _check_size(nbytes)
    ex = await _exchange(helper, sni, "POST", UPLOAD_PATH, nbytes, timeout=timeout,
                         transport=transport, keep=64 * 1024, opened=opened)
    t = _transfer(ex, sni, "upload", transport, nbytes)
    if t.failure is not None:
        return t
    try:
        if ex.status != 200:
            raise ValueError(f"status {ex.status}")
        report = msgspec.json.decode(bytes(ex.body), type=UploadReport)
    except (ValueError, msgspec.DecodeError):
        return _fail(t, BAD_RESPONSE)
    if not _plausible(report, nbytes, ex.t_end - ex.t_start):
        return _fail(t, BAD_RESPONSE)
    t.bytes, t.samples = report.received, list(report.samples)
    if report.received != nbytes:
        return _fail(t, SHORT_TRANSFER)
    return t


def _plausible(report: UploadReport, nbytes: int, seen_s: float) -> bool:
    """A report we could have produced: counts and times that grow, within what we saw."""
    if not 0 <= report.received <= nbytes or not report.samples and report.received:
        return False
    last_t, last_n = 0.0, 0
    for t, n in report.samples:
        if t < last_t or n < last_n or t > seen_s + CLOCK_SLACK_S:
            return False
        last_t, last_n = t, n
    return last_n == report.received


async def echo_detail(helper: HelperAddress, *, sni: str | None = None,
                      timeout: float = 5.0) -> tuple[str, str | None]:
    """(our address as the helper sees it, failure); the address is "" when it failed."""
    ex = await _exchange(helper, sni, "GET", ECHO_PATH, b"", timeout=timeout,
                         transport="tcp", keep=4096)
    if ex.failure is not None:
        return "", ex.failure
    try:
        if ex.status != 200:
            raise ValueError(f"status {ex.status}")
        import ipaddress

        address = ipaddress.ip_address(msgspec.json.decode(bytes(ex.body), type=EchoReport).address)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped  # a dual-stack helper: an IPv4 client all the same
        return str(address), None
    except (ValueError, msgspec.DecodeError):
        return "", BAD_RESPONSE


async def echo(helper: HelperAddress, *, sni: str | None = None, timeout: float = 5.0) -> str:
    """Our public address as the helper sees it, or "" when the helper could not say."""
    return (await echo_detail(helper, sni=sni, timeout=timeout))[0]


async def control(helper: HelperAddress, request: dict, *, timeout: float = 30.0) -> dict:
    """The OONI web connectivity control for `request` (oohelperd's CtrlRequest shape).

    On failure returns {"control_failure": failure} (the test_keys name OONI uses).
    """
    body = json.dumps(request).encode()
    ex = await _exchange(helper, None, "POST", CONTROL_PATH, body, timeout=timeout,
                         transport="tcp", keep=4 * 1024 * 1024)
    if ex.failure is not None:
        return {"control_failure": ex.failure}
    try:
        if ex.status != 200:
            raise ValueError(f"status {ex.status}")
        answer = json.loads(bytes(ex.body))
        if not isinstance(answer, dict):
            raise ValueError("not an object")
    except ValueError:
        return {"control_failure": BAD_RESPONSE}
    return answer
