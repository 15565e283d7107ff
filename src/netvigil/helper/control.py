"""The OONI web connectivity control (oohelperd's protocol) from the helper's vantage.

Request and response are the typed records of th.py (ooni/probe-cli internal/model/th.go),
with oohelperd's plan: resolve the URL's host; connect to every address the probe or we
found on the URL's port (80 and 443 for http://), TLS on 443 with the URL's host as SNI;
GET the URL; with x_quic_enabled and an h3 Alt-Svc, QUIC handshakes too. Bogons are not
connected to, and neither are private, loopback or link-local destinations unless the
operator allows them (a lab): the helper is never a way into the network it runs in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

import msgspec

from netvigil.helper.fetch import fetch
from netvigil.helper.limits import Limits
from netvigil.helper.th import (
    IS_BOGON,
    RESOLVED_BY_PROBE,
    RESOLVED_BY_TH,
    THDNS,
    VALID_FOR_DOMAIN,
    THHTTPRequest,
    THIPInfo,
    THRequest,
    THResponse,
    THTCPConnect,
    THTLSHandshake,
)
from netvigil.probe import failures

MAX_ENDPOINTS = 16
MAX_CONCURRENT = 16
DNS_TIMEOUT_S = 4.0
CONNECT_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 15.0
MAX_BODY = 1 << 20


def is_public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast


def _split(endpoint: str) -> tuple[str, int] | None:
    host, sep, port = endpoint.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return (host, int(port)) if sep and port.isdigit() and 0 < int(port) < 65536 else None


def _join(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


class ControlService:
    """Answers POST / bodies; one instance per helper (bounded concurrency)."""

    def __init__(self, limits: Limits, resolver: tuple[str, int] | None = None,
                 ca_file: str | None = None):
        self.limits = limits
        self.resolver = resolver
        self.tls = ssl.create_default_context()  # the system's trust store, plus a lab's CA
        if ca_file:
            self.tls.load_verify_locations(cafile=ca_file)
        self.ca_file = ca_file
        self.slots = asyncio.Semaphore(MAX_CONCURRENT)

    def allowed(self, ip: str) -> bool:
        return self.limits.allow_private_targets or is_public(ip)

    async def answer(self, body: bytes) -> tuple[int, bytes]:
        try:
            req = msgspec.json.decode(body, type=THRequest)
            url = urlsplit(req.http_request)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise ValueError("http_request must be an http:// or https:// URL")
            _ = url.port  # raises on a bad port
        except (msgspec.DecodeError, ValueError) as exc:
            return 400, msgspec.json.encode({"error": f"bad control request: {exc}"})
        async with self.slots:
            response = await self.measure(req, url)
        return 200, msgspec.json.encode(response)

    async def close(self) -> None:
        return None

    async def resolve(self, host: str) -> list[str]:
        """Addresses of `host` (A then AAAA); raises with an OONI failure on error."""
        try:
            ipaddress.ip_address(host)
            return [host]
        except ValueError:
            pass
        async with asyncio.timeout(DNS_TIMEOUT_S):
            if self.resolver is not None:
                return await self._resolve_dns(host)
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(info[4][0] for info in infos))

    async def _resolve_dns(self, host: str) -> list[str]:
        import dns.asyncresolver
        import dns.exception
        import dns.resolver

        res = dns.asyncresolver.Resolver(configure=False)
        res.nameservers = [self.resolver[0]]
        res.port = self.resolver[1]
        res.lifetime = DNS_TIMEOUT_S
        out: list[str] = []
        nxdomain = 0
        for qtype in ("A", "AAAA"):
            try:
                answer = await res.resolve(host, qtype)
                out += [r.to_text() for r in answer]
            except dns.resolver.NXDOMAIN:
                nxdomain += 1
            except dns.resolver.NoAnswer:
                pass
            except dns.exception.DNSException as exc:
                raise failures.StepFailure("dns_server_failure", str(exc)) from None
        if nxdomain == 2:
            raise failures.StepFailure("dns_name_error")
        return out

    async def _dns(self, host: str) -> THDNS:
        try:
            return THDNS(None, await self.resolve(host))
        except failures.StepFailure as exc:
            return THDNS(exc.failure, [])
        except socket.gaierror as exc:
            if exc.errno == socket.EAI_NONAME:
                return THDNS("dns_name_error", [])
            if exc.errno == getattr(socket, "EAI_NODATA", -5):
                return THDNS(None, [])
            return THDNS("dns_server_failure", [])
        except (TimeoutError, OSError):
            return THDNS("unknown_error", [])

    async def measure(self, req: THRequest, url) -> THResponse:  # noqa: ANN001
        host = url.hostname
        is_ip = _split(_join(host, 1)) is not None  # an address, not a name: no DNS step
        dns = THDNS(None, []) if is_ip else await self._dns(host)
        ip_info: dict[str, THIPInfo] = {}
        for endpoint in (req.tcp_connect or [])[:MAX_ENDPOINTS]:
            pair = _split(endpoint)
            if pair:
                ip_info.setdefault(pair[0], THIPInfo(0, 0)).flags |= RESOLVED_BY_PROBE
        for ip in (dns.addrs or [])[:MAX_ENDPOINTS]:
            ip_info.setdefault(ip, THIPInfo(0, 0)).flags |= RESOLVED_BY_TH
        for ip, info in ip_info.items():
            if not is_public(ip):
                info.flags |= IS_BOGON
            info.asn = _asn(ip)
        ports = [url.port] if url.port else ([443] if url.scheme == "https" else [80, 443])
        endpoints = sorted((_join(ip, p), ip, p) for ip in ip_info for p in ports if self.allowed(ip))
        tcp: dict[str, THTCPConnect] = {}
        tls: dict[str, THTLSHandshake] = {}

        async def one(endpoint: str, ip: str, port: int) -> None:
            tcp[endpoint], handshake = await self._tcp_tls(ip, port, host if port == 443 else None)
            if handshake is not None:
                tls[endpoint] = handshake
                if handshake.failure is None:
                    ip_info[ip].flags |= VALID_FOR_DOMAIN

        fetched_task = asyncio.ensure_future(fetch(
            req.http_request, req.http_request_headers or {}, resolve=self.resolve, allowed=self.allowed,
            max_body=MAX_BODY, timeout=HTTP_TIMEOUT_S, tls=self.tls))
        await asyncio.gather(*(one(*e) for e in endpoints[:MAX_ENDPOINTS]))
        fetched = await fetched_task
        h3 = _h3_endpoint(fetched.first_alt_svc, fetched.first_authority)
        quic: dict[str, THTLSHandshake] = {}
        if req.x_quic_enabled and h3:
            await asyncio.gather(*(self._quic(quic, e, ip, p, host) for e, ip, p in endpoints[:MAX_ENDPOINTS]
                                   if p == 443))
        http = THHTTPRequest(body_length=len(fetched.body) if fetched.failure is None else -1,
                             discovered_h3_endpoint=h3, failure=fetched.failure, title=fetched.title,
                             headers=fetched.headers, status_code=fetched.status_code)
        return THResponse(tcp_connect=tcp, tls_handshake=tls, quic_handshake=quic, http_request=http,
                          http3_request=None, dns=dns, ip_info=ip_info)

    async def _tcp_tls(self, ip: str, port: int, sni: str | None) -> tuple[THTCPConnect, THTLSHandshake | None]:
        writer = None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(ip, port)
        except (OSError, TimeoutError) as exc:
            return THTCPConnect(False, failures.classify(exc)), None
        try:
            if sni is None:
                return THTCPConnect(True, None), None
            failure = None
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await writer.start_tls(self.tls, server_hostname=sni)
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                failure = failures.classify(exc)
            return THTCPConnect(True, None), THTLSHandshake(sni, failure is None, failure)
        finally:
            writer.transport.abort()

    async def _quic(self, out: dict, endpoint: str, ip: str, port: int, sni: str) -> None:
        from netvigil.probe.quic import quic_handshake
        from netvigil.probe.trace import Trace

        failure = await quic_handshake(Trace(), ip, port, server_name=sni, tid=0,
                                       timeout=CONNECT_TIMEOUT_S, ca_file=self.ca_file)
        out[endpoint] = THTLSHandshake(sni, failure is None, failure)


def _h3_endpoint(alt_svc: str, authority: str) -> str:
    """oohelperd's discoverH3Endpoint: the first h3= entry of the first response's Alt-Svc."""
    for entry in alt_svc.split(","):
        _, sep, alt = entry.split(";")[0].partition("h3=")
        if not sep or not alt:
            continue
        alt = alt.strip().strip('"')
        host, colon, port = alt.rpartition(":")
        if not colon:
            return ""
        if not port.isdigit():
            return ""
        host = host.strip("[]") or (urlsplit("//" + authority).hostname or "")
        return _join(host, int(port)) if host else ""
    return ""


def _asn(ip: str) -> int:
    try:
        from netvigil.targets.geo import locate
    except ImportError:
        return 0
    return locate(ip).asn
