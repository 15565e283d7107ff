"""The lab ISP's resolver (lab/censord.py Resolver, lab/dnsforward.py) asks its upstream as a
real resolver does: a slow upstream's answer is waited for, a lost query is sent again, and
only seconds of silence give SERVFAIL. On loopback: the real resolver, a real UDP upstream
that answers late, drops queries or never answers. No root needed."""

from __future__ import annotations

import asyncio
import json

import dns.message
import dns.rcode
import dns.rrset

from netvigil.lab import dnsforward
from netvigil.lab.censord import Policy, Resolver


class Upstream(asyncio.DatagramProtocol):
    """An authoritative server on loopback: answers A 10.77.128.1 after `delay`, skipping
    the first `drop` queries (lost on the way)."""

    def __init__(self, delay: float = 0.0, drop: int = 0, answer: bool = True):
        self.delay, self.drop, self.answer = delay, drop, answer
        self.seen = 0
        self.transport = None

    def connection_made(self, transport):  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        self.seen += 1
        if self.seen <= self.drop or not self.answer:
            return
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "A", "10.77.128.1"))
        asyncio.get_running_loop().call_later(self.delay, self.transport.sendto, r.to_wire(), addr)


async def _ask(upstream: Upstream, tmp_path, name: str = "twitter.com") -> dns.message.Message:
    """One query to the lab resolver, whose upstream is `upstream`; the reply it gives."""
    loop = asyncio.get_running_loop()
    up, _ = await loop.create_datagram_endpoint(lambda: upstream, local_addr=("127.0.0.1", 0))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"dns": {}, "sni": {}}))
    cfg = {"upstream": "127.0.0.1", "upstream_port": up.get_extra_info("sockname")[1]}
    res, _ = await loop.create_datagram_endpoint(lambda: Resolver(cfg, Policy(policy)), local_addr=("127.0.0.1", 0))
    reply: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
            if not reply.done():
                reply.set_result(data)

    client, _ = await loop.create_datagram_endpoint(Client, remote_addr=res.get_extra_info("sockname"))
    try:
        client.sendto(dns.message.make_query(name, "A").to_wire())
        return dns.message.from_wire(await asyncio.wait_for(reply, 30))
    finally:
        for t in (client, res, up):
            t.close()


def _a(r: dns.message.Message) -> list[str]:
    return [x.address for rrset in r.answer for x in rrset]


def test_a_slow_upstream_is_waited_for(tmp_path):
    """An answer after 2.2 s (a loaded lab's authoritative server) reaches the client; the
    resolver gave SERVFAIL at 2 s before."""
    up = Upstream(delay=2.2)
    r = asyncio.run(_ask(up, tmp_path))
    assert r.rcode() == dns.rcode.NOERROR and _a(r) == ["10.77.128.1"]


def test_a_lost_query_is_sent_again(tmp_path):
    up = Upstream(drop=1)
    r = asyncio.run(_ask(up, tmp_path))
    assert r.rcode() == dns.rcode.NOERROR and _a(r) == ["10.77.128.1"] and up.seen == 2


def test_silence_is_servfail_after_every_try(tmp_path, monkeypatch):
    monkeypatch.setattr(dnsforward, "WAITS", (0.05, 0.05, 0.1))
    up = Upstream(answer=False)
    r = asyncio.run(_ask(up, tmp_path))
    assert r.rcode() == dns.rcode.SERVFAIL and up.seen == 3


def test_an_answer_to_another_query_is_not_taken():
    async def go() -> tuple[bytes | None, int]:
        loop = asyncio.get_running_loop()

        class WrongId(asyncio.DatagramProtocol):
            def connection_made(self, transport):  # noqa: ANN001
                self.transport, self.seen = transport, 0

            def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
                self.seen += 1
                q = dns.message.from_wire(data)
                q.id ^= 0xFFFF
                self.transport.sendto(dns.message.make_response(q).to_wire(), addr)

        proto = WrongId()
        up, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
        try:
            wire = dns.message.make_query("twitter.com", "A").to_wire()
            return await dnsforward.forward(wire, up.get_extra_info("sockname"), waits=(0.05, 0.05)), proto.seen
        finally:
            up.close()

    answer, seen = asyncio.run(go())
    assert answer is None and seen == 2

