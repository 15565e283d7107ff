"""The control's HTTP GET: only the URL asked and its redirects, capped, never a proxy.

We resolve and connect ourselves (h11 over asyncio streams) so that every hop's address is
checked against the private-destination policy right before the connect that uses it (no
DNS rebinding between a check and a connect), only GET is ever sent, and the body read is
capped in bytes and time.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import h11

from netvigil.probe import failures

MAX_REDIRECTS = 10
MAX_HEAD = 32 * 1024
_TITLE = re.compile(rb"(?i)<title>([^<]{1,128})</title>")
_FORWARDED = ("user-agent", "accept", "accept-language")  # as oohelperd: nothing else

Resolve = Callable[[str], Awaitable[list[str]]]
Allowed = Callable[[str], bool]


class Refused(Exception):
    """A hop's destination is not one the helper may fetch (private, loopback, ...)."""


@dataclass
class Fetched:
    status_code: int = -1
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    failure: str | None = None
    first_alt_svc: str = ""
    first_authority: str = ""

    @property
    def title(self) -> str:
        match = _TITLE.search(self.body)
        return match.group(1).decode("utf-8", "replace") if match else ""


def _port(parts) -> int:  # noqa: ANN001
    return parts.port or (443 if parts.scheme == "https" else 80)


async def fetch(url: str, headers: dict[str, list[str]], *, resolve: Resolve, allowed: Allowed,
                max_body: int, timeout: float, tls: ssl.SSLContext | None = None) -> Fetched:
    """GET `url`, following up to MAX_REDIRECTS redirects; failures as OONI TH strings."""
    out = Fetched()
    sent = [(k, v) for k, vs in headers.items() if k.lower() in _FORWARDED for v in vs[:4]]
    try:
        async with asyncio.timeout(timeout):
            for hop in range(MAX_REDIRECTS + 1):
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https") or not parts.hostname:
                    raise ValueError(f"cannot fetch {url!r}")
                addrs = await resolve(parts.hostname)
                if not addrs:
                    raise failures.StepFailure("dns_lookup_error")
                ip = addrs[0]
                if not allowed(ip):
                    raise Refused(ip)
                status, head, body = await _get(ip, _port(parts), parts, sent, max_body, tls)
                if hop == 0:
                    out.first_alt_svc = head.get("Alt-Svc", "")
                    out.first_authority = parts.netloc
                out.status_code, out.body = status, body
                out.headers = head
                location = head.get("Location")
                if status in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                return out
            raise failures.StepFailure("unknown_error", "too many redirects")
    except Exception as exc:  # noqa: BLE001 - every failure of a fetch is data for the probe
        out.failure = _th_failure(exc)
        out.status_code, out.headers, out.body = -1, {}, b""
    return out


def _th_failure(exc: BaseException) -> str:
    """The legacy TH words oohelperd keeps for HTTP (dns_lookup_error, ...)."""
    if isinstance(exc, Refused):
        return "unknown_error"
    failure = failures.classify(exc)
    if failure.startswith("dns_"):
        return "dns_lookup_error"
    if failure == "connection_refused":
        return "connection_refused_error"
    if failure == failures.TIMEOUT:
        return failure
    return "unknown_error"


async def _get(ip: str, port: int, parts, sent: list[tuple[str, str]],  # noqa: ANN001
               max_body: int, tls: ssl.SSLContext | None) -> tuple[int, dict[str, str], bytes]:
    ctx = None
    if parts.scheme == "https":
        ctx = tls or ssl.create_default_context()
    reader, writer = await asyncio.open_connection(
        ip, port, ssl=ctx, server_hostname=parts.hostname if ctx else None)
    try:
        conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        head = [("Host", parts.netloc.rsplit("@", 1)[-1]), ("Connection", "close"), *sent]
        writer.write(conn.send(h11.Request(method="GET", target=target, headers=head)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        status, headers, body = -1, {}, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data and conn.their_state is h11.SEND_RESPONSE:
                    raise failures.StepFailure(failures.EOF_ERROR)
                conn.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                for k, v in event.headers:
                    name = k.decode("latin-1").title()  # Go's canonical form, as oohelperd
                    headers.setdefault(name, v.decode("latin-1"))
            elif isinstance(event, h11.Data):
                body += event.data[:max_body - len(body)]
                if len(body) >= max_body:
                    break
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        return status, headers, bytes(body)
    finally:
        writer.transport.abort()
