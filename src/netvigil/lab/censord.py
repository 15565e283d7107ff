"""The censor of one lab ISP: runs inside the ISP's middlebox namespace.

One asyncio process per ISP with four parts, all driven by a policy file that the lab runner
rewrites when the scenario clock crosses a window boundary (re-read on change):
- the ISP's recursive resolver (forwards to the lab's authoritative server, retrying as a
  real resolver does: dnsforward.py) which can answer
  NXDOMAIN, a bogon, the block-page address, or inject a forged answer ahead of the real one;
- an NFQUEUE classifier that reads the SNI of ClientHellos and marks the flow (iptables and tc
  act on the mark: throttle class, RST, drop) or closes it with a forged FIN;
- the block-page server (HTTP :80) and the MITM TLS server (:443, censor CA) that DNAT'd
  connections land on.

Usage (by the runner): python -m netvigil.lab.censord CONFIG.json
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from netvigil.lab import dnsforward, httpd
from netvigil.lab.sni import RawSender, TcpPacket, parse_sni

BLOCKPAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Доступ ограничен</title></head><body>"
    "<h1>Доступ к запрашиваемому ресурсу закрыт.</h1>"
    "<p>Доступ к сайту ограничен в соответствии с Федеральными законами.</p>"
    "<p>netvigil lab block page ({isp}) for {host}</p></body></html>"
)
MARK_DROP = 3


class Policy:
    """The current policy, re-read whenever the file changes."""

    def __init__(self, path: Path):
        self.path = path
        self.mtime = 0.0
        self.dns: dict[str, dict] = {}
        self.sni: dict[str, dict] = {}
        self.refresh()

    def refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self.mtime:
            return
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        self.mtime = mtime
        self.dns = data.get("dns", {})
        self.sni = data.get("sni", {})


class Resolver(asyncio.DatagramProtocol):
    """The ISP's recursive resolver (UDP): answers as the policy says (NXDOMAIN, a bogon, the
    block page, a forged answer ahead of the real one) and forwards everything else."""

    def __init__(self, cfg: dict, policy: Policy):
        self.cfg = cfg
        self.policy = policy
        self.upstream = cfg["upstream"]
        self.upstream_port = int(cfg.get("upstream_port", 53))
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        asyncio.get_running_loop().create_task(self.answer(data, addr))

    async def answer(self, data: bytes, addr) -> None:
        try:
            q = dns.message.from_wire(data)
            qname = q.question[0].name.to_text().rstrip(".").lower()
            qtype = q.question[0].rdtype
        except Exception:  # noqa: BLE001 - garbage query: ignore as a resolver would
            return
        self.policy.refresh()
        rule = self.policy.dns.get(qname)
        action = rule["action"] if rule else None
        if action == "nxdomain":
            r = dns.message.make_response(q)
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.flags |= dns.flags.RA
            self.transport.sendto(r.to_wire(), addr)
            return
        if action in ("bogon", "blockpage", "inject") and qtype == dns.rdatatype.A:
            forged = dns.message.make_response(q)
            forged.flags |= dns.flags.RA
            forged.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "A", rule["ip"]))
            self.transport.sendto(forged.to_wire(), addr)
            if action != "inject":
                return
            await asyncio.sleep(rule.get("delay", 0.05))  # the real answer arrives later
        real = await self.forward(q)
        if real is not None:
            self.transport.sendto(real, addr)

    async def forward(self, q) -> bytes | None:
        data = await dnsforward.forward(q.to_wire(), (self.upstream, self.upstream_port))
        try:
            r = dns.message.from_wire(data) if data else None
        except Exception:  # noqa: BLE001 - a garbled answer: as none
            r = None
        if r is None:  # upstream unreachable (outage) or silent for seconds: SERVFAIL
            r = dns.message.make_response(q)
            r.set_rcode(dns.rcode.SERVFAIL)
        r.flags |= dns.flags.RA
        return r.to_wire()


class SniClassifier:
    """NFQUEUE callback: marks a flow from the SNI of its ClientHello (recipes/2_sni)."""

    def __init__(self, policy: Policy, log):
        self.policy = policy
        self.log = log
        self.bufs: dict[tuple, bytes] = {}
        self.raw: RawSender | None = None
        self.slot = -1

    def __call__(self, pkt) -> None:
        try:
            self.handle(pkt)
        except Exception as exc:  # noqa: BLE001 - never leave a packet without a verdict
            self.log(f"classifier error: {exc!r}")
            pkt.accept()

    def handle(self, pkt) -> None:
        p = TcpPacket(pkt.get_payload())
        if not p.payload:
            pkt.accept()
            return
        data = self.bufs.get(p.flow, b"") + p.payload
        complete, sni = parse_sni(data)
        if not complete and len(data) < 16384:
            self.bufs[p.flow] = data
            pkt.accept()
            return
        self.bufs.pop(p.flow, None)
        self.policy.refresh()
        rule = self.policy.sni.get(sni or "")
        if rule is None:
            pkt.set_mark(9)  # inspected, clean
            pkt.accept()
            return
        self.log(f"{p.src}:{p.sport} -> {p.dst}:{p.dport} SNI={sni} action={rule['action']}")
        if rule["action"] == "fin":
            if self.raw is None:
                self.raw = RawSender()
            self.raw.close_both_ends(p)
            pkt.set_mark(MARK_DROP)
        elif "slots" in rule:  # throttling: one htb class per flow, dealt round-robin
            self.slot += 1
            pkt.set_mark(int(rule["mark"]) + self.slot % int(rule["slots"]))
        else:
            pkt.set_mark(int(rule["mark"]))
        pkt.accept()


def _blockpage_fn(isp: str):
    def page(host: str, path: str):
        body = BLOCKPAGE.format(isp=isp, host=host or "?").encode()
        return 200, [("Content-Type", "text/html; charset=utf-8")], body
    return page


async def main(cfg_path: str) -> None:
    cfg = json.loads(Path(cfg_path).read_text())
    log_file = open(cfg["log"], "a", buffering=1)

    def log(msg: str) -> None:
        log_file.write(f"{time.strftime('%H:%M:%S')} {msg}\n")

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _l, ctx: log(f"loop: {ctx.get('message')} {ctx.get('exception')!r}"))
    policy = Policy(Path(cfg["policy"]))
    await loop.create_datagram_endpoint(lambda: Resolver(cfg, policy), local_addr=(cfg["resolver"], 53))
    page = _blockpage_fn(cfg["isp"])
    bp = cfg["blockpage_ip"]
    await asyncio.start_server(lambda r, w: httpd.handle(r, w, page), bp, 80)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg["mitm_cert"], cfg["mitm_key"])
    await asyncio.start_server(lambda r, w: httpd.handle(r, w, page), bp, 443, ssl=ctx,
                               ssl_handshake_timeout=10)
    nfq = None
    if cfg.get("queue") is not None:
        from netfilterqueue import NetfilterQueue

        nfq = NetfilterQueue()
        nfq.bind(int(cfg["queue"]), SniClassifier(policy, log), max_len=4096)
        fd = nfq.get_fd()
        os.set_blocking(fd, False)
        loop.add_reader(fd, lambda: nfq.run(block=False))
    Path(cfg["ready"]).write_text(str(os.getpid()))
    log(f"censor ready for {cfg['isp']}")
    try:
        await asyncio.Event().wait()
    finally:
        if nfq is not None:
            nfq.unbind()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
