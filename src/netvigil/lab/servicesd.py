"""The lab's "internet" services: runs inside the transit namespace.

- an authoritative DNS server for every catalogue domain (A records from the lab's address
  plan; AAAA empty; anything else NXDOMAIN), which is also the public resolver the control
  vantage and the VPN path use;
- HTTP/1.1 on :80 and HTTPS on :443 on every service address (certificate from the lab CA),
  serving what the real host would: a page on `/`, the catalogue's objects of that host, 404
  elsewhere (httpd.py); the other addresses of the transit (e.g. the test helper's) stay free;
- QUIC/HTTP3 on UDP :443 (aioquic), one socket per service address so replies leave from the
  address the client asked.

The runner starts two of these: one for DNS/HTTP/HTTPS ("tcp": true) and one for QUIC only,
so aioquic's CPU-heavy handshakes and the TLS server use both cores.

Usage (by the runner): python -m netvigil.lab.servicesd CONFIG.json
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from netvigil.lab import httpd


class AuthDNS(asyncio.DatagramProtocol):
    def __init__(self, zone: dict[str, str]):
        self.zone = zone
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            q = dns.message.from_wire(data)
            qname = q.question[0].name
        except Exception:  # noqa: BLE001 - garbage: ignore
            return
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA | dns.flags.RA
        name = qname.to_text().rstrip(".").lower()
        ip = self.zone.get(name)
        if ip is None:
            r.set_rcode(dns.rcode.NXDOMAIN)
        elif q.question[0].rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(qname, 300, "IN", "A", ip))
        self.transport.sendto(r.to_wire(), addr)


def _h3_protocol(objects: httpd.Objects):
    from aioquic.asyncio import QuicConnectionProtocol
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import HeadersReceived
    from aioquic.quic.events import HandshakeCompleted

    class H3Server(QuicConnectionProtocol):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.h3 = None

        def quic_event_received(self, ev):
            if isinstance(ev, HandshakeCompleted):
                self.h3 = H3Connection(self._quic)
            if self.h3 is None:
                return
            for e in self.h3.handle_event(ev):
                if isinstance(e, HeadersReceived):
                    hdrs = dict(e.headers)
                    host = hdrs.get(b":authority", b"").decode().split(":")[0].lower()
                    path = hdrs.get(b":path", b"/").decode()
                    size = objects.get(host, {}).get(path)
                    if size is not None:
                        code, body = 200, httpd.object_body(min(size, 4 << 20))
                    else:
                        code, _, body = httpd.service_page(host, path)
                    self.h3.send_headers(e.stream_id, [(b":status", str(code).encode()),
                                                       (b"content-length", str(len(body)).encode())])
                    self.h3.send_data(e.stream_id, body, end_stream=True)
            self.transmit()

    return H3Server


async def main(cfg_path: str) -> None:
    cfg = json.loads(Path(cfg_path).read_text())
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _l, _ctx: None)  # clients that vanish are normal here
    objects = httpd.catalogue_objects()
    serve_http = functools.partial(httpd.handle, objects=objects)
    hosts = sorted(set(cfg["zone"].values()))  # the service addresses only, not the whole namespace
    if cfg.get("tcp", True):
        await loop.create_datagram_endpoint(lambda: AuthDNS(cfg["zone"]), local_addr=(cfg["dns"], 53))
        await asyncio.start_server(serve_http, hosts, 80, backlog=512)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cfg["cert"], cfg["key"])
        ctx.set_alpn_protocols(["http/1.1"])
        await asyncio.start_server(serve_http, hosts, 443, ssl=ctx, ssl_handshake_timeout=15, backlog=512)
    if cfg.get("quic"):
        from aioquic.asyncio import serve
        from aioquic.h3.connection import H3_ALPN
        from aioquic.quic.configuration import QuicConfiguration

        proto = _h3_protocol(objects)
        for ip, (cert, key) in cfg["quic"].items():
            qcfg = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
            qcfg.load_cert_chain(cert, key)
            await serve(ip, 443, configuration=qcfg, create_protocol=proto)
    Path(cfg["ready"]).write_text(str(os.getpid()))
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        pass
