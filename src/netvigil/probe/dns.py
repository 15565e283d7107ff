"""DNS over our own UDP socket, keeping every response that arrives within a window.

An on-path injector answers first with a forged address and the real resolver's answer
arrives later on the same socket: both are kept (the first in `queries`, the later ones in
`x_dns_late_replies`, OONI's name), so the analysis can call `dns.injected`. The system
resolver (getaddrinfo) is used when no resolver is given.
"""

from __future__ import annotations

import asyncio
import base64
import socket

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from netvigil.model.measurement import DNSAnswer, DNSQuery
from netvigil.probe import failures
from netvigil.probe.streams import join_host_port
from netvigil.probe.trace import Trace


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()
        self.error: OSError | None = None

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        self.queue.put_nowait((data, asyncio.get_running_loop().time()))

    def error_received(self, exc: OSError) -> None:
        self.error = exc
        self.queue.put_nowait((b"", 0.0))


def _answers(msg: dns.message.Message) -> list[DNSAnswer]:
    out: list[DNSAnswer] = []
    for rrset in msg.answer:
        for rd in rrset:
            if rd.rdtype == dns.rdatatype.A:
                out.append(DNSAnswer(answer_type="A", ipv4=rd.address, ttl=rrset.ttl))
            elif rd.rdtype == dns.rdatatype.AAAA:
                out.append(DNSAnswer(answer_type="AAAA", ipv6=rd.address, ttl=rrset.ttl))
            elif rd.rdtype == dns.rdatatype.CNAME:
                out.append(DNSAnswer(answer_type="CNAME", hostname=rd.target.to_text(), ttl=rrset.ttl))
    return out


def _failure(msg: dns.message.Message, qtype: str, answers: list[DNSAnswer]) -> str | None:
    rcode = msg.rcode()
    if rcode != dns.rcode.NOERROR:
        return failures.from_rcode(dns.rcode.to_text(rcode))
    if not any(a.answer_type == qtype for a in answers):
        return "dns_no_answer"
    return None


async def udp_lookup(trace: Trace, domain: str, qtype: str, resolver: tuple[str, int], *,
                     tid: int, timeout: float, window: float) -> list[str]:
    """Query `resolver` over UDP; record every matching response; return all addresses."""
    loop = asyncio.get_running_loop()
    host, port = resolver
    address = join_host_port(host, port)
    query = dns.message.make_query(domain, qtype)
    wire = query.to_wire()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    t0 = trace.now()
    trace.event("resolve_start", t0, address=address, tid=tid)
    trace.emit("started", "resolve", domain=domain, qtype=qtype)
    transport, proto = await loop.create_datagram_endpoint(_Collector, family=family,
                                                            remote_addr=(host, port))
    responses: list[tuple[dns.message.Message, bytes, float]] = []
    failure = None
    try:
        tw = trace.now()
        transport.sendto(wire)
        trace.event("write_to", tw, address=address, num_bytes=len(wire), proto="udp", tid=tid)
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            tr = trace.now()
            try:
                data, _ = await asyncio.wait_for(proto.queue.get(), remaining)
            except TimeoutError:
                break
            if proto.error is not None:
                trace.event("read_from", tr, address=address, proto="udp", tid=tid,
                            failure=failures.classify(proto.error))
                failure = failures.classify(proto.error)
                break
            trace.event("read_from", tr, address=address, num_bytes=len(data), proto="udp", tid=tid)
            try:
                msg = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue  # garbage on our port: not an answer to our query
            if msg.id != query.id or not query.is_response(msg):
                continue
            responses.append((msg, data, trace.now()))
            if len(responses) == 1:
                deadline = min(deadline, loop.time() + window)  # keep listening for a racing answer
            if len(responses) >= 8:
                break
    finally:
        transport.close()
    addrs: list[str] = []
    if not responses:
        failure = failure or failures.TIMEOUT
        trace.queries.append(DNSQuery(hostname=domain, query_type=qtype, engine="udp",
                                      resolver_address=address, failure=failure, t0=t0,
                                      t=trace.now(), transaction_id=tid))
    for i, (msg, data, t) in enumerate(responses):
        answers = _answers(msg)
        fail = _failure(msg, qtype, answers)
        rec = DNSQuery(hostname=domain, query_type=qtype, engine="udp", resolver_address=address,
                       answers=answers or None, failure=fail, t0=t0, t=t, transaction_id=tid,
                       raw_response=base64.b64encode(data).decode(), rcode=msg.rcode())
        (trace.queries if i == 0 else trace.late_replies).append(rec)
        for a in answers:
            ip = a.ipv4 or a.ipv6
            if ip and ip not in addrs:
                addrs.append(ip)
    first_failure = failure if not responses else _failure(responses[0][0], qtype, _answers(responses[0][0]))
    trace.event("resolve_done", t0, address=address, failure=first_failure, tid=tid)
    trace.emit("failed" if first_failure else "complete", "resolve", domain=domain, qtype=qtype,
               failure=first_failure, addresses=addrs, responses=len(responses))
    return addrs


async def system_lookup(trace: Trace, domain: str, *, tid: int, timeout: float) -> list[str]:
    """getaddrinfo, recorded as OONI's `getaddrinfo` engine (query_type ANY)."""
    loop = asyncio.get_running_loop()
    t0 = trace.now()
    trace.emit("started", "resolve", domain=domain, qtype="ANY")
    failure = None
    addrs: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(domain, 443, type=socket.SOCK_STREAM)
        for family, *_rest, sockaddr in infos:
            if sockaddr[0] not in addrs:
                addrs.append(sockaddr[0])
    except TimeoutError:
        failure = failures.TIMEOUT
    except socket.gaierror as exc:
        failure = {socket.EAI_NONAME: "dns_nxdomain_error", socket.EAI_AGAIN: "dns_temporary_failure",
                   getattr(socket, "EAI_NODATA", -5): "dns_no_answer"}.get(exc.errno,
                                                                           "dns_server_misbehaving")
    answers = [DNSAnswer(answer_type="AAAA", ipv6=a) if ":" in a else DNSAnswer(answer_type="A", ipv4=a)
               for a in addrs]
    trace.queries.append(DNSQuery(hostname=domain, query_type="ANY", engine="getaddrinfo",
                                  answers=answers or None, failure=failure, t0=t0, t=trace.now(),
                                  transaction_id=tid))
    trace.event("resolve_done", t0, failure=failure, tid=tid)
    trace.emit("failed" if failure else "complete", "resolve", domain=domain, failure=failure,
               addresses=addrs)
    return addrs


def system_nameserver(path: str = "/etc/resolv.conf") -> tuple[str, int] | None:
    """The first `nameserver` of resolv.conf that is an IP address, on port 53."""
    import ipaddress

    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()  # noqa: SIM115
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ipaddress.ip_address(parts[1].split("%")[0])
            except ValueError:
                continue
            return parts[1].split("%")[0], 53
    return None
