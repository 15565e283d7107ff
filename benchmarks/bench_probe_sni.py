"""What the SNI-keyed throughput test costs a service test (issue 12): time and bytes.

Servers: tests/probe/servers.py (DNS, TLS, HTTP, QUIC on loopback, in their own process) and
a real `netvigil helper` (its own process) behind a counting forwarder that adds the TCP and
UDP payload bytes going each way (TLS records and QUIC packets included, IP/TCP/UDP headers
not).
Baseline: one throughput sample download, the way the probe takes one (a 100 KB catalogue
object over a fresh TCP+TLS connection), timed by the probe's own trace (TCP connect, TLS
handshake and GET of that connection; a difference of two service tests' wall times was
below their jitter, once negative). Target: the time the SNI test adds to the twitter service
test (with --helper minus without), defaults as shipped. Goals: ratio <= 2; bytes on the
wire of the test for one service in one probe round <= 300 KB.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from netvigil._io import free_port

ROOT = Path(__file__).resolve().parent.parent
REPEAT = 5
OBJECT_BYTES = 100_000


class Counter:
    """TCP and UDP forwarder to the helper that counts the payload bytes each way."""

    def __init__(self, target: int):
        self.target = target
        self.bytes = 0

    async def start(self) -> int:
        self.port = free_port(udp=True)
        self.tcp = await asyncio.start_server(self._tcp, "127.0.0.1", self.port)
        loop = asyncio.get_running_loop()
        self.udp, _ = await loop.create_datagram_endpoint(lambda: _UDPIn(self), local_addr=("127.0.0.1", self.port))
        return self.port

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            r2, w2 = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    self.bytes += len(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

    def close(self) -> None:
        self.tcp.close()
        self.udp.close()


class _UDPIn(asyncio.DatagramProtocol):
    def __init__(self, counter: Counter):
        self.c = counter
        self.out: dict = {}

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        self.c.bytes += len(data)
        up = self.out.get(addr)
        if up is None:
            loop = asyncio.get_running_loop()
            up = self.out[addr] = _UDPOut(self, addr)
            loop.create_task(loop.create_datagram_endpoint(lambda: up, remote_addr=("127.0.0.1", self.c.target)))
            up.pending.append(data)
            return
        up.send(data)


class _UDPOut(asyncio.DatagramProtocol):
    def __init__(self, inbound: _UDPIn, client):  # noqa: ANN001
        self.inbound, self.client, self.pending, self.transport = inbound, client, [], None

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport
        for d in self.pending:
            transport.sendto(d)
        self.pending.clear()

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.pending.append(data)
        else:
            self.transport.sendto(data)

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        self.inbound.c.bytes += len(data)
        self.inbound.transport.sendto(data, self.client)


def settings(info: dict, **kw):
    from netvigil.probe.settings import ProbeSettings, parse_port_map, parse_resolver

    return ProbeSettings(resolver=parse_resolver(info["resolver"]), ca_file=info["ca_file"],
                         port_map=parse_port_map(info["port_map"]), timeout=5.0, dns_window=0.1,
                         sample_bytes=OBJECT_BYTES, sample_seconds=3.0, **kw)


async def timed(s, cat, svc) -> tuple[float, object]:  # noqa: ANN001
    from netvigil.probe.experiments import run_service

    t0 = time.perf_counter()
    m = await run_service(s, cat, svc)
    return time.perf_counter() - t0, m


def _get(x, key):  # noqa: ANN001, ANN202 - a record or its dict form
    return x.get(key) if isinstance(x, dict) else getattr(x, key, None)


def sample_seconds(m) -> float:  # noqa: ANN001 - a Measurement
    """One object sample as the probe's own trace timed it: its connection's TCP connect and
    TLS handshake and the GET (t - t0 of each, same transaction). Timed from the trace, not as
    the difference of two service tests' wall times: a 100 KB object on loopback costs less
    than those tests' jitter under load (that difference came out negative at load 6.5)."""
    tk = m.test_keys
    samples = [x for x in tk["throughput"] if not _get(x, "failure")]
    if not samples:
        raise SystemExit("bench_probe_sni: the service test with the object took no sample")
    x = samples[0]
    tid = _get(x, "transaction_id")
    total = _get(x, "t") - _get(x, "t0")
    for key in ("tcp_connect", "tls_handshakes"):
        for e in tk[key]:
            if _get(e, "transaction_id") == tid and _get(e, "t") is not None and _get(e, "t0") is not None:
                total += _get(e, "t") - _get(e, "t0")
    return total


async def measure(info: dict, helper_port: int) -> None:
    sys.path.insert(0, str(ROOT / "tests/probe"))
    from servers import with_objects

    from netvigil.targets import load_catalogue
    from netvigil.targets.catalogue import Service

    asyncio.get_running_loop().set_exception_handler(lambda _l, _c: None)  # forwarders cut at exit
    cat = with_objects(load_catalogue(), OBJECT_BYTES)
    twitter = cat.service("twitter")
    ep = twitter.endpoints[0]
    with_obj = Service(name="twitter", display_name="Twitter", endpoints=(ep,), suffixes=twitter.suffixes,
                       objects=tuple(o for o in twitter.objects if o.host == ep.domain))
    bare = Service(name="twitter", display_name="Twitter", endpoints=(ep,), suffixes=twitter.suffixes)
    counter = Counter(helper_port)
    port = await counter.start()
    plain, helped, t_obj, t_bare, sizes, traced = [], [], [], [], [], []
    s0 = settings(info)
    s1 = settings(info, helpers=(f"127.0.0.1:{port}",))
    await timed(s1, cat, twitter)  # warm: imports, TLS contexts, the helper's first QUIC
    for _ in range(REPEAT):
        t, m_obj = await timed(s0, cat, with_obj)
        t_obj.append(t)
        traced.append(sample_seconds(m_obj))
        t_bare.append((await timed(s0, cat, bare))[0])
        plain.append((await timed(s0, cat, twitter))[0])
        before = counter.bytes
        t, m = await timed(s1, cat, twitter)
        helped.append(t)
        sizes.append(counter.bytes - before)
        x = m.test_keys["x_sni_throughput"]
        assert x["helper"] and not any(t.get("failure") for t in x["transfers"]), x
    counter.close()
    sample = statistics.median(traced)
    added = statistics.median(helped) - statistics.median(plain)
    ratio = added / sample if sample > 0 else float("inf")
    print(f"one object sample ({OBJECT_BYTES} B, fresh TCP+TLS, timed by the probe's trace): {sample:.3f} s "
          f"(wall time of the endpoint's test with it {statistics.median(t_obj):.3f} s, without "
          f"{statistics.median(t_bare):.3f} s)")
    print(f"RESULT probe_sni_time_added={added:.3f} s ratio={ratio:.2f} baseline={sample:.3f} s "
          f"(one sample download; goal ratio <= 2; twitter {statistics.median(plain):.3f} -> "
          f"{statistics.median(helped):.3f} s, median of {REPEAT})")
    print(f"RESULT probe_sni_wire_bytes={max(sizes)} bytes per service per round (max of {REPEAT}; "
          f"TCP+UDP payload to and from the helper, TLS and QUIC included; goal <= 300000)")


def main() -> None:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/probe/servers.py"), "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hport = free_port(udp=True)
    helper = subprocess.Popen([sys.executable, "-m", "netvigil", "helper", "--listen", f"127.0.0.1:{hport}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        line = helper.stdout.readline()  # "netvigil helper on ..." once both sockets are bound
        if "helper on" not in line:
            raise SystemExit(f"helper did not start: {line.strip()}")
        asyncio.run(measure(info, hport))
    finally:
        helper.terminate()
        helper.wait(10)
        proc.stdin.close()
        proc.wait(10)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
