"""One endpoint, every step: resolve, then for every address TCP -> TLS -> HTTP, QUIC,
and the throughput sample of each catalogue object on that host (a real object of the
service: nothing here asks a server for something only our lab serves). Network errors never
escape: they are recorded as data."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from netvigil.probe import dns as dnsstep
from netvigil.probe import failures
from netvigil.probe.http import http_get, sample_download
from netvigil.probe.proxy import connect_via
from netvigil.probe.settings import ProbeSettings
from netvigil.probe.streams import tcp_connect
from netvigil.probe.tls import client_context, tls_handshake
from netvigil.probe.trace import Trace


@dataclass
class MeasureRun:
    """What every step of one measurement shares: its trace, the settings and the
    semaphore bounding parallel connections."""

    trace: Trace
    settings: ProbeSettings
    sem: asyncio.Semaphore


@dataclass(frozen=True)
class Target:
    """What to do at one host: the protocols of a catalogue endpoint, or one URL."""

    domain: str
    protocols: tuple[str, ...]
    port: int | None = None
    path: str = "/"
    objects: tuple[tuple[str, int | None], ...] = ()  # (path, expected bytes) of catalogue objects
    is_ip: bool = False


async def resolve(ctx: MeasureRun, domain: str) -> list[str]:
    """--resolver: A and AAAA over our UDP socket. Without it: getaddrinfo, and the same
    UDP queries to the system's nameserver (resolv.conf) so an injected answer is seen."""
    s = ctx.settings
    tid = ctx.trace.new_id(domain)
    udp_server = s.resolver or dnsstep.system_nameserver()
    lookups = []
    if udp_server is not None:
        lookups += [dnsstep.udp_lookup(ctx.trace, domain, qtype, udp_server, tid=tid, timeout=s.timeout,
                                       window=s.dns_window) for qtype in ("A", "AAAA")]
    if s.resolver is None:
        lookups.append(dnsstep.system_lookup(ctx.trace, domain, tid=tid, timeout=s.timeout))
    results = await asyncio.gather(*lookups)
    addrs: list[str] = []
    for found in results:
        for ip in found:
            if ip not in addrs:
                addrs.append(ip)
    v4 = [a for a in addrs if ":" not in a][: s.max_ips]
    v6 = [a for a in addrs if ":" in a][: s.max_ips]
    return v4 + v6


async def _open(ctx: MeasureRun, domain: str, ip: str | None, port: int, tid: int):  # noqa: ANN202
    s = ctx.settings
    if s.proxy is not None:
        return await connect_via(s.proxy, ctx.trace, domain, port, tid=tid, timeout=s.timeout)
    return await tcp_connect(ctx.trace, ip, port, tid=tid, timeout=s.timeout)


async def chain(ctx: MeasureRun, target: Target, ip: str | None, *, scheme: str, tls: bool, http: bool,
                obj: tuple[str, int | None] | None = None) -> bool:
    """TCP (-> TLS) (-> HTTP GET) to one address; True when every step succeeded."""
    s, trace, domain = ctx.settings, ctx.trace, target.domain
    port = target.port or (443 if scheme == "https" else 80)
    wire_port = s.port(port)
    tid = trace.new_id(domain)
    alpn = ["http/1.1"] if http else []
    async with ctx.sem:
        stream = None
        try:
            stream = raw = await _open(ctx, domain, ip, wire_port, tid)
            if tls:
                ctx_ssl = client_context(s.ca_file, True, tuple(alpn))
                stream = await tls_handshake(raw, trace, server_name=domain, alpn=alpn, ctx=ctx_ssl,
                                             timeout=s.timeout)
            if obj is not None:
                path, expected = obj
                await sample_download(stream, trace, url=f"{scheme}://{domain}{path}", host=domain,
                                      path=path, expected=expected, seconds=s.sample_seconds,
                                      timeout=s.timeout, server_name=domain, cap=s.sample_bytes)
            elif http:
                host = domain if port in (80, 443) else f"{domain}:{port}"
                tx = await http_get(stream, trace, url=f"{scheme}://{host}{target.path}", host=host,
                                    path=target.path, timeout=s.timeout,
                                    alpn="http/1.1" if tls else None)
                return tx.failure is None
            return True
        except (OSError, TimeoutError, failures.StepFailure, Exception) as exc:  # noqa: BLE001
            if not isinstance(exc, (OSError, TimeoutError, failures.StepFailure)):
                import ssl

                if not isinstance(exc, ssl.SSLError):
                    trace.event("internal_error", trace.now(), failure=failures.classify(exc), tid=tid)
            return False
        finally:
            if stream is not None:
                stream.close()


async def measure(ctx: MeasureRun, target: Target) -> None:
    """All steps for one target; its protocols say which ones."""
    protos = set(target.protocols)
    s = ctx.settings
    if target.is_ip:
        ips: list[str | None] = [target.domain]
    elif s.proxy is not None:
        ips = [None]  # the proxy resolves the name
    else:
        ips = list(await resolve(ctx, target.domain))
    if not ips or protos <= {"dns"}:
        return
    tls = bool(protos & {"tls", "https"})
    secure = protos & {"tcp", "tls", "https"}  # the TCP(/TLS)(/HTTP) chain on 443 (or port)
    ok_ips: list[str | None] = []

    async def primary(ip: str | None) -> None:
        if await chain(ctx, target, ip, scheme="https" if tls else "http", tls=tls,
                       http="https" in protos or (not tls and "http" in protos)):
            ok_ips.append(ip)

    async with asyncio.TaskGroup() as tg:
        for ip in ips:
            if secure or "http" in protos:
                tg.create_task(primary(ip))
            if tls and "http" in protos:  # cleartext HTTP on :80 as well
                tg.create_task(chain(ctx, target, ip, scheme="http", tls=False, http=True))
            if "quic" in protos and ip is not None and s.proxy is None:
                tg.create_task(_quic(ctx, target, ip))
    good = [ip for ip in ips if ip in ok_ips]
    if target.objects and tls and good:
        for obj in target.objects:
            await chain(ctx, target, good[0], scheme="https", tls=True, http=False, obj=obj)


def warm_up(settings: ProbeSettings, quic: bool) -> None:
    """Do the slow one-time work (TLS contexts with the trust store, the aioquic import)
    before the clock runs: done inside a measurement it would block the event loop and
    inflate the timings of every step in flight."""
    client_context(settings.ca_file, True, ("http/1.1",))
    client_context(settings.ca_file, True, ())
    if quic:
        import aioquic.asyncio.client  # noqa: F401
        import aioquic.quic.configuration  # noqa: F401


async def _quic(ctx: MeasureRun, target: Target, ip: str) -> None:
    from netvigil.probe.quic import quic_handshake

    async with ctx.sem:
        tid = ctx.trace.new_id(target.domain)
        try:
            await quic_handshake(ctx.trace, ip, ctx.settings.port(target.port or 443), server_name=target.domain, tid=tid,
                                 timeout=ctx.settings.timeout, ca_file=ctx.settings.ca_file)
        except Exception as exc:  # noqa: BLE001 - never let one step kill the measurement
            ctx.trace.event("internal_error", ctx.trace.now(), failure=failures.classify(exc), tid=tid)
