"""What the SNI-keyed throughput test costs a user's service test (issue 12): time and bytes.

Goals (issue #12): the test adds at most 2x the time of one sample download to a service
test, and at most 300 KB on the wire per service per round, with the defaults.

Measured behind an EMULATED ACCESS LINK (root; benchmarks/_access_link.py): network
namespaces of this benchmark's own, the link's RTT and rate each way (a delay line and htb),
no route out. The probe runs in one; in the other, the service hosts as the lab runs them
(lab/servicesd.py's DNS, lab/httpd.py over TLS, aioquic HTTP/3) and a real `netvigil helper`.
One run per profile (PROFILES), each with:
- baseline: one throughput sample download the way the probe takes one (a 100 KB catalogue
  object over a fresh TCP+TLS connection), timed by the probe's own trace (TCP connect, TLS
  handshake and GET of that connection);
- target: the time the SNI test adds to the twitter service test (the same test with and
  without --helper, defaults as shipped), medians of REPEAT;
- bytes: IP bytes to and from the helper (TCP and UDP, headers included: what a mobile user
  is billed), counted by iptables in the probe's namespace, the largest of REPEAT.
Run it under the lab lock: `flock /tmp/nv-lab.lock .venv/bin/python benchmarks/bench_probe_sni.py`.

`--loopback` (also what runs without root) measures the same on loopback with a counting
forwarder (TCP/UDP payload, TLS and QUIC included, headers not). Its time ratio is NOT
meaningful: a 100 KB object takes ~7 ms there, so the ratio is the test's CPU over nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _access_link import SERVER_IP, AccessLink, Profile  # noqa: E402

from netvigil._io import free_port  # noqa: E402

REPEAT = 5
OBJECT_BYTES = 100_000
OBJECT_PATH = f"/static/object-{OBJECT_BYTES}.bin"
HELPER_PORT = 4443
PROFILES = (
    Profile("4g", rtt_ms=60, down_mbit=10, up_mbit=10),
    Profile("dsl", rtt_ms=30, down_mbit=20, up_mbit=20),
    Profile("slow-mobile", rtt_ms=150, down_mbit=2, up_mbit=2),
    Profile("adsl-asym", rtt_ms=30, down_mbit=16, up_mbit=1),
)
DEFAULT_PROFILES = ("4g", "dsl", "slow-mobile")

# the service hosts in the server namespace, as the lab runs them (lab/servicesd.py)
SERVICES = r"""
import asyncio, functools, json, ssl, sys
from aioquic.asyncio import serve
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from netvigil.lab import httpd, servicesd

async def main(cfg):
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _l, _c: None)
    objects = cfg["objects"]
    await loop.create_datagram_endpoint(lambda: servicesd.AuthDNS(cfg["zone"]), local_addr=(cfg["ip"], 53))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    ctx.set_alpn_protocols(["http/1.1"])
    handler = functools.partial(httpd.handle, objects=objects)
    await asyncio.start_server(handler, cfg["ip"], 80, backlog=512)
    await asyncio.start_server(handler, cfg["ip"], 443, ssl=ctx, backlog=512)
    q = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    q.load_cert_chain(cfg["cert"], cfg["key"])
    await serve(cfg["ip"], 443, configuration=q, create_protocol=servicesd._h3_protocol(objects))
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main(json.loads(sys.argv[1])))
"""


def catalogue_with_object():  # noqa: ANN201
    """The packaged catalogue with one static object of known size on twitter.com (the real
    objects' sizes are unset until checked from an uncensored network)."""
    import msgspec

    from netvigil.targets import load_catalogue
    from netvigil.targets.catalogue import ServiceObject

    cat = load_catalogue()
    tw = cat.service("twitter")
    obj = ServiceObject(url=f"https://{tw.endpoints[0].domain}{OBJECT_PATH}", bytes=OBJECT_BYTES)
    services = {**cat.services, "twitter": msgspec.structs.replace(tw, objects=(obj,))}
    return msgspec.structs.replace(cat, services=services)


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
    if _get(x, "bytes") != OBJECT_BYTES:
        raise SystemExit(f"bench_probe_sni: the sample carried {_get(x, 'bytes')} bytes, not {OBJECT_BYTES}")
    tid = _get(x, "transaction_id")
    total = _get(x, "t") - _get(x, "t0")
    for key in ("tcp_connect", "tls_handshakes"):
        for e in tk[key]:
            if _get(e, "transaction_id") == tid and _get(e, "t") is not None and _get(e, "t0") is not None:
                total += _get(e, "t") - _get(e, "t0")
    return total


async def measure(s0, s1, count, repeat: int) -> dict:  # noqa: ANN001
    """Figures of one set-up: s0 = the probe's settings without a helper, s1 with one;
    count() = bytes to and from the helper so far."""
    from netvigil.targets.catalogue import Service

    asyncio.get_running_loop().set_exception_handler(lambda _l, _c: None)  # forwarders cut at exit
    cat = catalogue_with_object()
    twitter = cat.service("twitter")
    ep = twitter.endpoints[0]
    with_obj = Service(name="twitter", display_name="Twitter", endpoints=(ep,), suffixes=twitter.suffixes,
                       objects=twitter.objects)
    plain, helped, sizes, traced, cpu = [], [], [], [], []
    await timed(s1, cat, twitter)  # warm: imports, TLS contexts, the helper's first QUIC
    for _ in range(repeat):
        traced.append(sample_seconds((await timed(s0, cat, with_obj))[1]))
        plain.append((await timed(s0, cat, twitter))[0])
        before, c0 = count(), time.process_time()
        t, m = await timed(s1, cat, twitter)
        cpu.append(time.process_time() - c0)
        helped.append(t)
        sizes.append(count() - before)
        x = m.test_keys["x_sni_throughput"]
        assert x["helper"] and not any(t.get("failure") for t in x["transfers"]), x
    sample = statistics.median(traced)
    added = statistics.median(helped) - statistics.median(plain)
    return {"sample_s": sample, "added_s": added, "ratio": added / sample if sample > 0 else float("inf"),
            "plain_s": statistics.median(plain), "helped_s": statistics.median(helped),
            "bytes": max(sizes), "cpu_s": statistics.median(cpu), "repeat": repeat}


def settings(**kw):  # noqa: ANN003, ANN201
    from netvigil.probe.settings import ProbeSettings

    return ProbeSettings(timeout=5.0, dns_window=0.1, sample_bytes=OBJECT_BYTES, sample_seconds=3.0, **kw)


# ---- on an emulated access link (root) -------------------------------------------------------

def _iptables_bytes() -> int:
    """IP bytes of the helper's flows counted by this namespace's iptables rules (child)."""
    total = 0
    for chain in ("INPUT", "OUTPUT"):
        out = subprocess.run(["iptables", "-w", "-nvxL", chain], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        for line in out.splitlines():
            if f"pt:{HELPER_PORT}" in line:
                total += int(line.split()[1])
    return total


def child(cfg: dict) -> None:
    """In the probe's namespace: count the helper's flows, measure, print one JSON line."""
    for chain, peer, side in (("OUTPUT", "-d", "--dport"), ("INPUT", "-s", "--sport")):
        for proto in ("tcp", "udp"):
            subprocess.run(["iptables", "-w", "-A", chain, peer, SERVER_IP, "-p", proto, side, str(HELPER_PORT)],
                           check=True, capture_output=True, timeout=30)
    s0 = settings(resolver=(SERVER_IP, 53), ca_file=cfg["ca"])
    s1 = settings(resolver=(SERVER_IP, 53), ca_file=cfg["ca"], helpers=(f"{SERVER_IP}:{HELPER_PORT}",))
    print(json.dumps(asyncio.run(measure(s0, s1, _iptables_bytes, cfg["repeat"]))), flush=True)


def _first_line(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    """The process's first line of output, "" if none came within `timeout` (bounded start)."""
    import select

    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


def on_link(profile: Profile, repeat: int) -> dict:
    from netvigil.lab.pki import service_certs
    from netvigil.targets import load_catalogue

    tw = load_catalogue().service("twitter")
    domains = sorted({e.domain for e in tw.endpoints if not e.is_ip} | {o.host for o in tw.objects})
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with tempfile.TemporaryDirectory(prefix="nv-bench-sni-") as tmp, AccessLink(profile) as link:
        certs = service_certs(Path(tmp), domains)
        cfg = {"ip": SERVER_IP, "zone": {d: SERVER_IP for d in domains}, "cert": str(certs["cert"]),
               "key": str(certs["key"]), "objects": {tw.endpoints[0].domain: {OBJECT_PATH: OBJECT_BYTES}}}
        services = link.popen(link.server_ns, [sys.executable, "-c", SERVICES, json.dumps(cfg)],
                              stdout=subprocess.PIPE, text=True, env=env)
        helper = link.popen(link.server_ns, [sys.executable, "-m", "netvigil", "helper", "--listen",
                                             f"{SERVER_IP}:{HELPER_PORT}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        if _first_line(services) != "ready":
            raise SystemExit("bench_probe_sni: the service hosts did not start")
        line = _first_line(helper)  # "netvigil helper on ..." once both sockets are bound
        if "helper on" not in line:
            raise SystemExit(f"bench_probe_sni: helper did not start: {line.strip()}")
        r = subprocess.run(["ip", "netns", "exec", link.client_ns, sys.executable, __file__, "--child",
                            json.dumps({"ca": str(certs["ca"]), "repeat": repeat})],
                           capture_output=True, text=True, timeout=1200, env=env)
        if r.returncode != 0:
            raise SystemExit(f"bench_probe_sni: the probe failed on {profile}: {r.stderr.strip()[-600:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])


# ---- on loopback ---------------------------------------------------------------------------

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


def on_loopback(repeat: int) -> dict:
    from netvigil.probe.settings import parse_port_map, parse_resolver

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

        async def run() -> dict:
            counter = Counter(hport)
            port = await counter.start()
            base = dict(resolver=parse_resolver(info["resolver"]), ca_file=info["ca_file"],
                        port_map=parse_port_map(info["port_map"]))
            try:
                return await measure(settings(**base), settings(**base, helpers=(f"127.0.0.1:{port}",)),
                                     lambda: counter.bytes, repeat)
            finally:
                counter.close()

        return asyncio.run(run())
    finally:
        helper.terminate()
        helper.wait(10)
        proc.stdin.close()
        proc.wait(10)


def report(where: str, r: dict, *, meaningful: bool = True, what: str = "IP bytes, headers included") -> None:
    note = "" if meaningful else " (NOT meaningful: a loopback sample takes milliseconds)"
    print(f"[{where}] one sample download ({OBJECT_BYTES} B, fresh TCP+TLS, the probe's trace): "
          f"{r['sample_s']:.3f} s; twitter service test {r['plain_s']:.3f} s -> {r['helped_s']:.3f} s with "
          f"--helper (median of {r['repeat']}; probe CPU with the helper {r['cpu_s']:.2f} s)")
    print(f"RESULT probe_sni_time_added[{where}]={r['added_s']:.3f} s ratio={r['ratio']:.2f} "
          f"baseline={r['sample_s']:.3f} s (one sample download; goal ratio <= 2){note}")
    print(f"RESULT probe_sni_wire_bytes[{where}]={r['bytes']} bytes per service per round "
          f"({what}, to and from the helper, max of {r['repeat']}; goal <= 300000)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="example: flock /tmp/nv-lab.lock .venv/bin/python benchmarks/bench_probe_sni.py "
                                        "--profile 4g --repeat 3")
    ap.add_argument("--profile", action="append", choices=[p.name for p in PROFILES],
                    help=f"link profile (repeatable; default: {', '.join(DEFAULT_PROFILES)})")
    ap.add_argument("--loopback", action="store_true", help="loopback only (no root needed)")
    ap.add_argument("--repeat", type=int, default=REPEAT, help=f"service tests per arm (default {REPEAT})")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(json.loads(a.child))
        return
    if not 1 <= a.repeat <= 50:
        raise SystemExit("bench_probe_sni: --repeat must be within 1..50")
    if a.loopback or os.geteuid() != 0:
        if not a.loopback:
            print("not root: loopback only (the emulated links need network namespaces)")
        report("loopback", on_loopback(a.repeat), meaningful=False, what="TCP/UDP payload, TLS and QUIC included")
        return
    rows = []
    for name in a.profile or DEFAULT_PROFILES:
        profile = next(p for p in PROFILES if p.name == name)
        r = on_link(profile, a.repeat)
        report(profile.name, r)
        rows.append((profile, r))
    print("profile | sample download s | SNI test adds s | ratio | KB on the wire")
    for p, r in rows:
        print(f"{p} | {r['sample_s']:.3f} | {r['added_s']:.3f} | {r['ratio']:.2f} | {r['bytes'] / 1000:.0f}")


if __name__ == "__main__":
    main()
