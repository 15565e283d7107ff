"""Real servers on loopback for probe tests (reusable by the lab, analysis and benchmarks).

`LoopbackWorld` runs, in a background thread with its own event loop:
- an authoritative DNS server (dnspython messages over UDP) with an optional injector that
  answers first with a forged address and then with the real one;
- TLS+HTTP/1.1 servers with a trustme CA, one loopback address per behaviour (valid,
  wrong-host, self-signed, RST/FIN/drop after ClientHello, slow drip, garbage, throttled);
- plain HTTP servers (block page, endless headers, huge body, never answering);
- a QUIC server (aioquic, h3 ALPN).
Every server listens on the same port number N on its own 127.0.0.X address; the probe
maps 443 and 80 to N with `port_map`. Domains resolve only through our DNS server.

    with LoopbackWorld() as world:
        settings = world.settings(timeout=2)
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import trustme

# behaviour -> loopback address
ADDR = {
    "good": "127.0.0.2",
    "wronghost": "127.0.0.3",
    "selfsigned": "127.0.0.4",
    "rst_after_hello": "127.0.0.5",
    "drop_after_hello": "127.0.0.6",
    "fin_after_hello": "127.0.0.7",
    "slow_drip": "127.0.0.8",
    "garbage": "127.0.0.9",
    "blockpage": "127.0.0.10",
    "endless_headers": "127.0.0.11",
    "huge_body": "127.0.0.12",
    "never_answer": "127.0.0.13",
    "throttled": "127.0.0.14",
    "refused": "127.0.0.15",  # nothing listens: connection_refused
    "forged": "127.0.0.16",  # the injector's forged answer (serves a block page)
    "socks5": "127.0.0.20",  # SOCKS5 proxy (resolves names with the zone)
    "http_connect": "127.0.0.21",  # HTTP CONNECT proxy
    "redirect": "127.0.0.22",  # plain HTTP 302 to http://blockpage.test/ (a redirect block page)
}
OBJECT_PATH = re.compile(r"/static/object-(\d{1,8})\.bin")  # a real-looking static object of N bytes


def with_objects(catalogue, nbytes: int = 100_000):  # noqa: ANN001, ANN201
    """The catalogue with one synthetic static object of known size on twitter.com and one on
    abs.twimg.com in place of Twitter's real ones (those: tests/probe/test_real_objects.py)."""
    import msgspec

    from netvigil.targets.catalogue import ServiceObject

    tw = catalogue.service("twitter")
    objs = tuple(ServiceObject(url=f"https://{d}/static/object-{nbytes}.bin", bytes=nbytes)
                 for d in ("twitter.com", "abs.twimg.com"))
    services = {**catalogue.services, "twitter": msgspec.structs.replace(tw, objects=objs)}
    return msgspec.structs.replace(catalogue, services=services)


BLOCKPAGE = b"<html><head><title>Access denied</title></head><body>This site is blocked by order of the authority.</body></html>"
SERVICE_DOMAINS = ("twitter.com", "www.twitter.com", "api.twitter.com", "mobile.twitter.com", "t.co",
                   "abs.twimg.com", "pbs.twimg.com", "video.twimg.com", "x.com",
                   "example.com", "example.org", "www.example.com")


def domain(behaviour: str) -> str:
    """The test domain that resolves to a behaviour's server: rst_after_hello -> rst-after-hello.test."""
    return behaviour.replace("_", "-") + ".test"


def _free_port(hosts: list[str]) -> int:
    """A port number free on every host (TCP and UDP)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        try:
            for h in hosts:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    fam = socket.AF_INET6 if ":" in h else socket.AF_INET
                    with socket.socket(fam, kind) as t:
                        t.bind((h, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


@dataclass
class Zone:
    """name -> addresses; names not in it are NXDOMAIN."""

    a: dict[str, list[str]] = field(default_factory=dict)
    aaaa: dict[str, list[str]] = field(default_factory=dict)
    inject: dict[str, str] = field(default_factory=dict)  # name -> forged IPv4, sent first
    delay: float = 0.0  # the real answer's delay (seconds)


class _DNSProtocol(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone):
        self.zone = zone

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        try:
            query = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001
            return
        q = query.question[0]
        name = q.name.to_text().rstrip(".").lower()
        qtype = dns.rdatatype.to_text(q.rdtype)
        loop = asyncio.get_running_loop()
        forged = self.zone.inject.get(name)
        if forged and qtype == "A":
            self.transport.sendto(self._answer(query, name, "A", [forged]).to_wire(), addr)
        real = self._real(query, name, qtype)
        if self.zone.delay or forged:
            loop.call_later(max(self.zone.delay, 0.02 if forged else 0), self.transport.sendto,
                            real.to_wire(), addr)
        else:
            self.transport.sendto(real.to_wire(), addr)

    def _answer(self, query, name: str, qtype: str, addrs: list[str]):  # noqa: ANN001, ANN202
        resp = dns.message.make_response(query)
        if addrs:
            resp.answer.append(dns.rrset.from_text_list(name + ".", 60, "IN", qtype, addrs))
        return resp

    def _real(self, query, name: str, qtype: str):  # noqa: ANN001, ANN202
        known = name in self.zone.a or name in self.zone.aaaa
        if not known:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.NXDOMAIN)
            return resp
        table = self.zone.a if qtype == "A" else self.zone.aaaa if qtype == "AAAA" else {}
        return self._answer(query, name, qtype, table.get(name, []))


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """(path, host) of one HTTP/1.1 request, or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    host = ""
    for line in lines[1:]:
        if line.lower().startswith("host:"):
            host = line.split(":", 1)[1].strip()
    return (parts[1] if len(parts) > 1 else "/"), host


def _response(code: int, body: bytes, ctype: str = "text/html") -> bytes:
    return (f"HTTP/1.1 {code} {'OK' if code == 200 else 'Error'}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class _Conn:
    """Plain HTTP over a stream (the same interface as _TLSConn)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.buf = b""

    async def recv(self) -> bytes:
        return await self.reader.read(65536)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    async def read_request(self) -> tuple[str, str] | None:
        while b"\r\n\r\n" not in self.buf:
            data = await self.recv()
            if not data or len(self.buf) > 65536:
                return None
            self.buf += data
        head = self.buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = head[0].split()
        host = next((h.split(":", 1)[1].strip() for h in head[1:] if h.lower().startswith("host:")), "")
        return (parts[1] if len(parts) > 1 else "/"), host


class _TLSConn(_Conn):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext):
        super().__init__(reader, writer)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)

    async def handshake(self, delay: float) -> None:
        first = True
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = self.outgoing.read()
                if out:
                    if first and delay:  # the ServerHello comes late, as over a long path
                        await asyncio.sleep(delay)
                    first = False
                    self.writer.write(out)
                    await self.writer.drain()
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("EOF in handshake")
                self.incoming.write(data)
        self.writer.write(self.outgoing.read())

    async def recv(self) -> bytes:
        while True:
            try:
                return self.obj.read(65536)
            except ssl.SSLWantReadError:
                self.writer.write(self.outgoing.read())
                data = await self.reader.read(65536)
                if not data:
                    return b""
                self.incoming.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def write(self, data: bytes) -> None:
        self.obj.write(data)
        self.writer.write(self.outgoing.read())


class LoopbackWorld:
    """All test servers; see the module docstring."""

    def __init__(self, *, delay: float = 0.0, throttle_bps: int = 400_000, ipv6: bool = True,
                 routes: dict[str, str] | None = None, quic: tuple[str, ...] = ("good",)):
        """`routes` sends a domain to a behaviour's server, e.g. {"twitter.com": "rst_after_hello"};
        `quic` names the behaviours whose address also answers QUIC handshakes (elsewhere a
        probe's QUIC check waits for its handshake timeout, twice)."""
        self.quic = quic
        self.delay = delay  # added before every DNS answer, TLS handshake and HTTP response
        self.throttle_bps = throttle_bps
        self.ipv6 = ipv6 and socket.has_ipv6 and _v6_loopback()
        self.tmp = Path(tempfile.mkdtemp(prefix="netvigil-world-"))
        self.ca = trustme.CA()
        self.other_ca = trustme.CA()
        self.ca_file = str(self.tmp / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        names = [*SERVICE_DOMAINS, *(domain(b) for b in ADDR)]
        self.zone = Zone(delay=delay)
        for b, ip in ADDR.items():
            self.zone.a[domain(b)] = [ip]
        for d in SERVICE_DOMAINS:
            self.zone.a[d] = [ADDR["good"]]
            if self.ipv6:
                self.zone.aaaa[d] = ["::1"]
        for d, behaviour in (routes or {}).items():
            self.zone.aaaa.pop(d, None)
            if behaviour == "injected":  # forged answer first, then the real one
                self.zone.a[d] = [ADDR["good"]]
                self.zone.inject[d] = ADDR["forged"]
            elif behaviour == "nxdomain":
                self.zone.a.pop(d, None)
            else:
                self.zone.a[d] = [ADDR[behaviour]]
        self.zone.a["injected.test"] = [ADDR["good"]]
        self.zone.inject["injected.test"] = ADDR["forged"]
        self.zone.a["nodata.test"] = []
        self.zone.aaaa["nodata.test"] = []
        self._good_cert = self.ca.issue_cert(*names, "injected.test", "nodata.test")
        self._wrong_cert = self.ca.issue_cert("some-other-name.test")
        self._self_cert = self.other_ca.issue_cert(*names)
        hosts = [ip for b, ip in ADDR.items() if b != "refused"] + ["127.0.0.1"]
        if self.ipv6:
            hosts.append("::1")
        self.port = _free_port(hosts)
        self.dns_port = self.port
        self.connections = 0
        self.proxied = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    # ---- public -------------------------------------------------------------------
    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    @property
    def port_map(self) -> str:
        return f"443={self.port},80={self.port}"

    def settings(self, **overrides):  # noqa: ANN201
        from netvigil.probe.settings import ProbeSettings

        base = dict(resolver=("127.0.0.1", self.dns_port), ca_file=self.ca_file,
                    port_map={443: self.port, 80: self.port}, timeout=2.0, dns_window=0.1,
                    sample_bytes=100_000, sample_seconds=2.0)
        base.update(overrides)
        return ProbeSettings(**base)

    def cli_args(self) -> list[str]:
        return ["--resolver", self.resolver, "--ca-file", self.ca_file, "--port-map", self.port_map]

    def __enter__(self) -> LoopbackWorld:
        self._thread = threading.Thread(target=self._run, name="loopback-world", daemon=True)
        self._thread.start()
        self._ready.wait(15)
        if self._error:
            raise self._error
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(10)

    # ---- server thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001
            self._error = exc
            self._ready.set()

    def _ctx(self, cert) -> ssl.SSLContext:  # noqa: ANN001
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        servers = []
        loop = self._loop
        p = self.port
        transport, _ = await loop.create_datagram_endpoint(lambda: _DNSProtocol(self.zone),
                                                           local_addr=("127.0.0.1", p))
        good = self._ctx(self._good_cert)
        tls_behaviours = {"good": good, "wronghost": self._ctx(self._wrong_cert),
                          "selfsigned": self._ctx(self._self_cert), "throttled": good, "forged": None}
        for b, ctx in tls_behaviours.items():
            servers.append(await asyncio.start_server(self._tls_handler(b, ctx), ADDR[b], p))
        if self.ipv6:
            servers.append(await asyncio.start_server(self._tls_handler("good", good), "::1", p))
        for b in ("rst_after_hello", "drop_after_hello", "fin_after_hello", "slow_drip", "garbage"):
            servers.append(await asyncio.start_server(self._raw_handler(b), ADDR[b], p))
        for b in ("blockpage", "endless_headers", "huge_body", "never_answer", "redirect"):
            servers.append(await asyncio.start_server(self._http_handler(b), ADDR[b], p))
        servers.append(await asyncio.start_server(self._proxy_handler("socks5"), ADDR["socks5"], p))
        servers.append(await asyncio.start_server(self._proxy_handler("http"), ADDR["http_connect"], p))
        quic = [await self._quic_server(ADDR[b], p) for b in self.quic]
        if self.ipv6:
            quic.append(await self._quic_server("::1", p))
        self._ready.set()
        await self._stop.wait()
        transport.close()
        for q in quic:
            q.close()
        for s in servers:
            s.close()

    async def _quic_server(self, host: str, port: int):  # noqa: ANN202
        from aioquic.asyncio import serve
        from aioquic.quic.configuration import QuicConfiguration

        cfg = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
        cfg.load_cert_chain(self._pem(self._good_cert.cert_chain_pems, "q-cert.pem"),
                            self._pem([self._good_cert.private_key_pem], "q-key.pem"))
        return await serve(host, port, configuration=cfg)

    def _pem(self, blobs, name: str) -> str:  # noqa: ANN001
        path = self.tmp / name
        path.write_bytes(b"".join(b.bytes() for b in blobs))
        return str(path)

    # TLS with a certificate, then HTTP. The handshake runs over memory BIOs in the
    # per-connection task (bytes that arrive early are never lost, the server flight can be
    # delayed), never on the listening socket.
    def _tls_handler(self, behaviour: str, ctx: ssl.SSLContext | None):  # noqa: ANN202
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            conn: _Conn = _Conn(reader, writer)
            try:
                first = await reader.read(65536)
                if not first:
                    return
                if ctx is not None and first[0] == 0x16:  # a TLS record: :443; else plain HTTP (:80)
                    conn = _TLSConn(reader, writer, ctx)
                    conn.incoming.write(first)
                    await conn.handshake(self.delay)
                else:
                    conn.buf = first
                req = await conn.read_request()
                if req is None:
                    return
                path, host = req
                if self.delay:
                    await asyncio.sleep(self.delay)
                if behaviour == "forged":
                    conn.write(_response(200, BLOCKPAGE))
                elif OBJECT_PATH.fullmatch(path):  # a static object of known size (catalogue objects)
                    await self._sample(conn, int(OBJECT_PATH.fullmatch(path).group(1)), behaviour == "throttled")
                else:
                    body = f"<html><body><h1>{host.split(':')[0]}</h1>netvigil test page</body></html>"
                    conn.write(_response(200, body.encode()))
                await conn.drain()
            except (ConnectionError, ssl.SSLError, OSError, ValueError):
                pass
            finally:
                writer.close()

        return handler

    async def _sample(self, writer: _Conn, n: int, throttled: bool) -> None:
        writer.write(_response(200, b"", "application/octet-stream").replace(
            b"Content-Length: 0", f"Content-Length: {n}".encode()))
        chunk = b"x" * 16384
        if not throttled:
            sent = 0
            while sent < n:
                writer.write(chunk[: n - sent])
                sent += min(len(chunk), n - sent)
                await writer.drain()
            return
        # paced: 1 KiB every 1024*8/bps seconds
        step = 1024
        interval = step * 8 / self.throttle_bps
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while sent < n:
            writer.write(chunk[: min(step, n - sent)])
            sent += min(step, n - sent)
            await writer.drain()
            await asyncio.sleep(max(0.0, start + sent / step * interval - loop.time()))

    # Misbehaving TLS servers: read the ClientHello, then misbehave.
    def _raw_handler(self, behaviour: str):  # noqa: ANN202
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            sock = writer.get_extra_info("socket")
            try:
                hello = await reader.read(16384)
                if not hello:
                    return
                if behaviour == "rst_after_hello":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif behaviour == "drop_after_hello":
                    await reader.read(1)  # silent until the client gives up
                elif behaviour == "garbage":
                    writer.write(os.urandom(64) + b"HTTP/1.1 200 OK\r\n\r\n" + os.urandom(2000))
                    await writer.drain()
                    await reader.read(1)
                elif behaviour == "slow_drip":
                    await self._drip(reader, writer, hello)
            except (ConnectionError, OSError, ssl.SSLError):
                pass
            finally:
                writer.transport.abort() if behaviour == "rst_after_hello" else writer.close()

        return handler

    async def _drip(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: bytes) -> None:
        """A real handshake whose server flight is sent 200 bytes every 0.25 s."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self._ctx(self._good_cert).wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(hello)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        flight = outgoing.read()
        for i in range(0, len(flight), 200):
            writer.write(flight[i:i + 200])
            await writer.drain()
            await asyncio.sleep(0.25)
        await reader.read(1)

    @property
    def socks5_url(self) -> str:
        return f"socks5://{ADDR['socks5']}:{self.port}"

    @property
    def http_proxy_url(self) -> str:
        return f"http://{ADDR['http_connect']}:{self.port}"

    def _proxy_handler(self, kind: str):  # noqa: ANN202
        """A SOCKS5 (no auth, CONNECT) or HTTP CONNECT proxy that resolves with the zone."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.proxied += 1
            upstream = None
            try:
                if kind == "socks5":
                    head = await reader.readexactly(2)
                    await reader.readexactly(head[1])
                    writer.write(b"\x05\x00")
                    req = await reader.readexactly(4)
                    if req[3] == 3:
                        name = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
                    else:
                        name = socket.inet_ntoa(await reader.readexactly(4))
                    port = struct.unpack("!H", await reader.readexactly(2))[0]
                else:
                    line = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0].split()[1].decode()
                    name, port = line.rsplit(":", 1)[0], int(line.rsplit(":", 1)[1])
                ips = self.zone.a.get(name) or ([name] if name[0].isdigit() else [])
                try:
                    if not ips:
                        raise OSError("no such host")
                    upstream = await asyncio.open_connection(ips[0], port)
                except OSError:
                    writer.write(b"\x05\x04\x00\x01" + bytes(6) if kind == "socks5"
                                 else b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
                    return
                writer.write(b"\x05\x00\x00\x01" + bytes(6) if kind == "socks5"
                             else b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                ur, uw = upstream

                async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                    try:
                        while data := await src.read(65536):
                            dst.write(data)
                            await dst.drain()
                    except (ConnectionError, OSError):
                        pass
                    finally:
                        dst.close()

                await asyncio.gather(pipe(reader, uw), pipe(ur, writer))
            except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError, IndexError):
                pass
            finally:
                writer.close()

        return handler

    # Misbehaving plain HTTP servers.
    def _http_handler(self, behaviour: str):  # noqa: ANN202
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                req = await _read_request(reader)
                if req is None:
                    return
                if behaviour == "blockpage":
                    writer.write(_response(200, BLOCKPAGE))
                elif behaviour == "redirect":
                    writer.write(b"HTTP/1.1 302 Found\r\nLocation: http://blockpage.test/\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                elif behaviour == "endless_headers":
                    writer.write(b"HTTP/1.1 200 OK\r\n")
                    for i in range(100_000):  # bounded: ~3 MB at most
                        writer.write(f"X-Filler-{i}: {'a' * 20}\r\n".encode())
                        await writer.drain()
                elif behaviour == "huge_body":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
                    chunk = b"y" * 65536
                    for _ in range(2000):  # bounded: 128 MB at most
                        writer.write(chunk)
                        await writer.drain()
                elif behaviour == "never_answer":
                    await reader.read(1)
                await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        return handler


def serve_forever() -> None:
    """`python tests/probe/servers.py [DELAY]`: run a world in its own process (benchmarks),
    print one JSON line (resolver, ca_file, port, port_map), stop when stdin closes."""
    import json
    import sys

    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    with LoopbackWorld(delay=delay) as w:
        print(json.dumps({"resolver": w.resolver, "ca_file": w.ca_file, "port": w.port,
                          "port_map": w.port_map, "ipv6": w.ipv6}), flush=True)
        sys.stdin.read()


def _v6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


if __name__ == "__main__":
    serve_forever()
