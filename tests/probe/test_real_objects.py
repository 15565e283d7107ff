"""The catalogue's real objects, end to end on loopback: the lab's own service-host code
(servicesd's authoritative DNS, httpd's HTTPS host) serves the packaged catalogue's objects at
their real paths and nothing lab-only; the probe fetches each as a throughput sample; the
analysis reads the samples' rates. A moved object is a failure with no rate, never a block."""

from __future__ import annotations

import asyncio
import csv
import functools
import ssl

import msgspec
import pytest
import trustme

from netvigil.analysis.verdicts.endpoints import endpoint_results
from netvigil.analysis.verdicts.observations import observe
from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.engine import judge
from netvigil.lab import httpd
from netvigil.lab.servicesd import AuthDNS, _h3_protocol
from netvigil.probe.experiments import run_service
from netvigil.model.measurement import measurement_to_dict
from netvigil.probe.settings import ProbeSettings
from netvigil.probe.show import summarize
from netvigil.targets import load_catalogue
from netvigil.targets.catalogue import ServiceObject
from tests.conftest import THIRD_PARTY

CAT = load_catalogue()
MAIN = ("twitter", "facebook", "youtube")
CAP = 100_000  # the probe's sample_bytes here: below the lab's object size, so every sample is capped


def test_objects_are_the_citizen_lab_lists_real_urls():
    """Provenance: every object is a URL of Citizen Lab's global list (services.toml says
    which lines), on one of its service's own endpoints; the main services have one."""
    listed = {row[0] for row in csv.reader((THIRD_PARTY / "citizenlab-test-lists/lists/global.csv").open())}
    objects = [o for s in CAT.services.values() for o in s.objects]
    assert objects and all(o.url in listed for o in objects), [o.url for o in objects if o.url not in listed]
    for name in MAIN:
        svc = CAT.service(name)
        assert svc.objects and {o.host for o in svc.objects} <= set(svc.domains), name
    assert not CAT.service("control").objects  # a control's rate comes from the helper
    assert not [o for o in objects if "netvigil" in o.url]


def test_the_lab_serves_exactly_the_catalogues_objects():
    served = httpd.catalogue_objects()
    expected = {(o.host, o.path) for s in CAT.services.values() for o in s.objects}
    assert {(h, p) for h, paths in served.items() for p in paths} == expected
    sizes = {o.url: o.bytes for s in CAT.services.values() for o in s.objects}
    for host, paths in served.items():
        for path, size in paths.items():
            assert size == (sizes[f"https://{host}{path}"] or 200_000)


class LabHosts:
    """The lab's service hosts for every catalogue domain, on 127.0.0.1 (ports mapped):
    servicesd's DNS and QUIC/HTTP3 server, httpd's HTTP and HTTPS host."""

    def __init__(self, tmp_path, objects: httpd.Objects | None = None):
        self.objects = httpd.catalogue_objects() if objects is None else objects
        self.ca = trustme.CA()
        domains = sorted({e.domain for s in CAT.services.values() for e in s.endpoints if not e.is_ip})
        self.ca_file = str(tmp_path / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert(*domains).configure_cert(self.server_ctx)
        self.server_ctx.set_alpn_protocols(["http/1.1"])
        self.zone = {d: "127.0.0.1" for d in domains}
        # QUIC as in the lab: a small certificate (a leaf naming every domain would overflow
        # QUIC's amplification limit), for the names the catalogue measures over QUIC
        quic = sorted({e.domain for s in CAT.services.values() for e in s.endpoints if "quic" in e.protocols})
        self.quic_cert, self.quic_key = str(tmp_path / "quic.pem"), str(tmp_path / "quic.key")
        leaf = self.ca.issue_cert(*quic)
        leaf.cert_chain_pems[0].write_to_path(self.quic_cert)
        leaf.private_key_pem.write_to_path(self.quic_key)
        self._closers: list = []

    async def __aenter__(self) -> LabHosts:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: AuthDNS(self.zone), local_addr=("127.0.0.1", 0))
        self.dns_port = transport.get_extra_info("sockname")[1]
        serve = functools.partial(httpd.handle, objects=self.objects, idle_timeout=5.0)
        tls = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.server_ctx)
        plain = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.tls_port = tls.sockets[0].getsockname()[1]
        self.http_port = plain.sockets[0].getsockname()[1]
        from aioquic.asyncio import serve as quic_serve
        from aioquic.h3.connection import H3_ALPN
        from aioquic.quic.configuration import QuicConfiguration

        qcfg = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
        qcfg.load_cert_chain(self.quic_cert, self.quic_key)
        quic = await quic_serve("127.0.0.1", self.tls_port, configuration=qcfg,
                                create_protocol=_h3_protocol(self.objects))
        self._closers = [transport.close, tls.close, plain.close, quic.close]
        return self

    async def __aexit__(self, *exc) -> None:  # noqa: ANN002
        for close in self._closers:
            close()

    def settings(self) -> ProbeSettings:
        return ProbeSettings(resolver=("127.0.0.1", self.dns_port), ca_file=self.ca_file,
                             port_map={443: self.tls_port, 80: self.http_port}, timeout=3.0, dns_window=0.1,
                             sample_bytes=CAP, sample_seconds=3.0, probe_asn="AS64500", probe_cc="RU")

    async def get(self, host: str, path: str) -> tuple[int, int]:
        """(status, Content-Length) of a GET over TLS with SNI `host`."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.tls_port, ssl=ctx, server_hostname=host)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        writer.close()
        length = next(int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:"))
        return int(head[0].split(" ")[1]), length


async def test_lab_hosts_serve_real_paths_only(tmp_path):
    async with LabHosts(tmp_path) as lab:
        for o in CAT.service("twitter").objects:
            assert await lab.get(o.host, o.path) == (200, o.bytes or 200_000)
        assert (await lab.get("pbs.twimg.com", "/netvigil-sample/100000"))[0] == 404  # nothing lab-only
        assert (await lab.get("pbs.twimg.com", "/tweet_video/EC6DSXDXsAEhHAa.mp4"))[0] == 404  # another host's object
        assert (await lab.get("pbs.twimg.com", "/"))[0] == 200


@pytest.mark.parametrize("name", MAIN)
async def test_probe_fetches_the_objects_and_the_analysis_reads_their_rates(tmp_path, name):
    svc = CAT.service(name)
    async with LabHosts(tmp_path) as lab:
        m = await run_service(lab.settings(), CAT, svc)
    samples = {t["url"]: t for t in m.test_keys["throughput"]}
    assert set(samples) == {o.url for o in svc.objects}
    for o in svc.objects:
        t = samples[o.url]
        assert t.get("failure") is None and CAP <= t["bytes"] <= (o.bytes or 200_000), t
        assert t["server_name"] == o.host and t["bits_per_second"] > 0
    rules = load_rules()
    rows = [r for r in observe(m.test_keys, rules) if r.step == "throughput"]
    assert {r.url for r in rows} == set(samples) and all(r.rate_bps and r.rate_bps > 0 for r in rows)
    per = endpoint_results(observe(m.test_keys, rules), m.test_keys, rules)
    for o in svc.objects:
        assert per[o.host].samples and per[o.host].rate_bps > 0, o.host
    f = judge(m, rules)
    assert len(f.sample_rates) == len(svc.objects) and f.rate_bps == min(f.sample_rates)
    assert not f.blocked, f
    lines = summarize(measurement_to_dict(m), verbose=True)  # `netvigil show`: an unset size is not "None"
    shown = [x for x in lines if "throughput https://" in x]
    assert len(shown) == len(svc.objects) and not [x for x in shown if "None" in x], shown


async def test_a_moved_object_is_a_failure_without_a_rate(tmp_path):
    """The real CDN moved the object (404 at the catalogue's path): the sample fails with
    the status, gives no rate, and the service is not called blocked for it."""
    tw = CAT.service("twitter")
    moved = msgspec.structs.replace(tw, objects=(ServiceObject(url="https://pbs.twimg.com/profile_images/gone.jpg"),))
    async with LabHosts(tmp_path) as lab:
        m = await run_service(lab.settings(), CAT, moved)
    (t,) = m.test_keys["throughput"]
    assert t.get("failure") == "http_status_404" and t.get("bits_per_second") is None
    f = judge(m, load_rules())
    assert not f.sample_rates and not f.blocked, f


async def test_a_small_object_is_fetched_but_gives_no_rate(tmp_path):
    """A favicon-sized object ends within a few TLS records: it proves the CDN path answers,
    but its 'rate' would be set-up time, so the analysis takes none from it."""
    fb = CAT.service("facebook")
    small = msgspec.structs.replace(fb, objects=(ServiceObject(url="https://static.xx.fbcdn.net/favicon.ico", bytes=2_000),))
    async with LabHosts(tmp_path, objects={"static.xx.fbcdn.net": {"/favicon.ico": 2_000}}) as lab:
        m = await run_service(lab.settings(), CAT, small)
    (t,) = m.test_keys["throughput"]
    assert t.get("failure") is None and t["bytes"] == 2_000
    (row,) = [r for r in observe(m.test_keys, load_rules()) if r.step == "throughput"]
    assert row.bytes == 2_000 and row.rate_bps is None
    f = judge(m, load_rules())
    assert not f.sample_rates and f.klass == "ok", f
