"""The helper's paths, independent of the transport (HTTP/1.1 over TLS or HTTP/3).

Both servers ask `route()` what a request means and use the bodies built here, so TCP and
QUIC answer exactly alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import msgspec

from netvigil.helper.limits import Limits
from netvigil.model.helper_protocol import (
    CONTROL_PATH,
    DOWNLOAD_PATH,
    ECHO_PATH,
    UPLOAD_PATH,
    EchoReport,
    Sampler,
    UploadReport,
)

CHUNK = 64 * 1024
_PAYLOAD = os.urandom(CHUNK)  # incompressible, so no layer can shrink what we time


@dataclass(frozen=True)
class Route:
    kind: str  # download, upload, echo, control, error
    nbytes: int = 0
    status: int = 200
    message: str = ""


def _error(status: int, message: str) -> Route:
    return Route("error", status=status, message=message)


def route(method: str, target: str, content_length: int | None, limits: Limits) -> Route:
    """What this request asks for, or the HTTP error that says why it cannot have it."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return _error(400, "this helper is not a proxy: ask for a path")
    path = parts.path
    if path == DOWNLOAD_PATH and method == "GET":
        values = parse_qs(parts.query).get("bytes", [])
        if len(values) != 1 or not values[0].isdigit():
            return _error(400, "download needs ?bytes=N")
        n = int(values[0])
        if not 0 < n <= limits.max_transfer_bytes:
            return _error(413, f"bytes must be 1..{limits.max_transfer_bytes}")
        return Route("download", nbytes=n)
    if path == UPLOAD_PATH and method == "POST":
        if content_length is None:
            return _error(411, "upload needs a Content-Length")
        if content_length > limits.max_transfer_bytes:
            return _error(413, f"upload of at most {limits.max_transfer_bytes} bytes")
        return Route("upload", nbytes=content_length)
    if path == ECHO_PATH and method == "GET":
        return Route("echo")
    if path == CONTROL_PATH and method == "POST":
        if content_length is not None and content_length > limits.max_control_body:
            return _error(413, f"control request of at most {limits.max_control_body} bytes")
        return Route("control")
    if path in (DOWNLOAD_PATH, UPLOAD_PATH, ECHO_PATH, CONTROL_PATH):
        return _error(405, "method not allowed")
    return _error(404, "no such path")


RECORD = 4096
"""Bytes per write: over TLS each write is its own record, and a receiver sees a record only
whole: at 128 kbit/s a 16 KiB record takes a second, too coarse a clock for a rate."""


def download_chunks(n: int):
    """`n` payload bytes in RECORD-sized pieces."""
    sent = 0
    while sent < n:
        piece = _PAYLOAD[sent % CHUNK : sent % CHUNK + min(RECORD, n - sent)]
        sent += len(piece)
        yield piece


def upload_report(sampler: Sampler) -> bytes:
    samples = sampler.finish()
    return msgspec.json.encode(UploadReport(received=sampler.total, first_byte_s=sampler.first_s,
                                            last_byte_s=sampler.last_s, samples=samples))


def echo_body(client_ip: str) -> bytes:
    return msgspec.json.encode(EchoReport(address=client_ip))


def error_body(route_: Route) -> bytes:
    return msgspec.json.encode({"error": route_.message})
