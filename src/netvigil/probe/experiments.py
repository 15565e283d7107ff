"""Experiments: `service` (every endpoint of a catalogue service in one measurement) and
`web` (one URL, web_connectivity-like without a test helper). Each returns one Measurement
in the OONI data format; the format is documented in docs/measurement-format.md."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from urllib.parse import urlsplit

from netvigil import __version__
from netvigil.model.measurement import SCRUBBED_IP, Measurement
from netvigil.model.times import FORMAT
from netvigil.probe import failures
from netvigil.probe.endpoint import MeasureRun, Target, measure, warm_up
from netvigil.probe.settings import ProbeSettings
from netvigil.probe.trace import Listener, Trace
from netvigil.targets.catalogue import Catalogue, Service, _is_ip

MAX_REDIRECTS = 5
CONTROL_SERVICE = "control"

SERVICE_TEST = ("service", "0.1.0")
WEB_TEST = ("web", "0.1.0")


def _fmt(t: dt.datetime) -> str:
    return t.strftime(FORMAT)


def report_id(test_name: str, settings: ProbeSettings, now: dt.datetime) -> str:
    """OONI-style: 20261125T093000Z_service_RU_12389_n1_<random>."""
    asn = settings.probe_asn.removeprefix("AS")
    return f"{now:%Y%m%dT%H%M%SZ}_{test_name}_{settings.probe_cc}_{asn}_n1_{secrets.token_hex(8)}"


def test_keys(trace: Trace) -> dict:
    keys: dict = {
        "queries": trace.queries,
        "x_dns_late_replies": trace.late_replies,
        "tcp_connect": trace.tcp_connect,
        "tls_handshakes": trace.tls_handshakes,
        "quic_handshakes": trace.quic_handshakes,
        "requests": trace.requests,
        "network_events": trace.network_events,
        "throughput": trace.throughput,
        "endpoints": trace.endpoints,
    }
    if trace.dropped_events:
        keys["x_dropped_network_events"] = trace.dropped_events
    if trace.sni_throughput is not None:
        keys["x_sni_throughput"] = trace.sni_throughput
    return keys


def envelope(settings: ProbeSettings, test: tuple[str, str], input_: str, trace: Trace,
             wall_start: dt.datetime, annotations: dict) -> Measurement:
    start = settings.scenario_time or _fmt(wall_start)
    import msgspec

    keys = msgspec.json.decode(msgspec.json.encode(test_keys(trace)))  # plain JSON types, as read back
    return Measurement(
        test_name=test[0], test_version=test[1], measurement_start_time=start, test_start_time=start,
        probe_cc=settings.probe_cc, probe_asn=settings.probe_asn,
        probe_network_name=settings.probe_network_name, probe_ip=SCRUBBED_IP, input=input_,
        report_id=report_id(test[0], settings, wall_start), test_runtime=round(trace.now(), 6),
        software_name="netvigil", software_version=__version__,
        resolver_ip=settings.resolver[0] if settings.resolver else None,
        annotations={"path": settings.path, "wallclock_start": _fmt(wall_start),
                     "failures_version": failures.version(), **annotations},
        test_keys=keys)


async def run_service(settings: ProbeSettings, catalogue: Catalogue, service: Service, *,
                      listener: Listener | None = None, run_id: str | None = None,
                      objects: bool = True) -> Measurement:
    """All endpoints of `service` concurrently (TaskGroup, bounded by a semaphore), the
    catalogue's objects of the service fetched as throughput samples (unless `objects` is
    False), and the SNI-keyed throughput test when settings name a helper."""
    warm_up(settings, any("quic" in e.protocols for e in service.endpoints))
    wall = dt.datetime.now(dt.timezone.utc)
    trace = Trace(listener)
    ctx = MeasureRun(trace, settings, asyncio.Semaphore(settings.parallelism))
    by_domain = service.objects_by_domain() if objects else {}
    async with asyncio.TaskGroup() as tg:
        for ep in service.endpoints:
            tg.create_task(measure(ctx, Target(domain=ep.domain, protocols=ep.protocols, port=ep.port,
                                               objects=by_domain.get(ep.domain, ()), is_ip=ep.is_ip)))
    target_sni = helper_sni(service)
    if settings.helpers and settings.proxy is None and target_sni is not None:
        # after the endpoints, and one service at a time (sni_test.exclusive): a rate measured
        # while this process is busy with other handshakes, or shares the link with its own
        # other flows, would measure us, not the network
        await _sni_test(trace, settings, catalogue, service, target_sni)
    ann = {"service": service.name, "catalogue_version": catalogue.version}
    if run_id:
        ann["run_id"] = run_id
    return envelope(settings, SERVICE_TEST, service.input_url, trace, wall, ann)


def helper_sni(service: Service) -> str | None:
    """The name a censor would key on: the service's first web host name (None: no TLS host)."""
    host = urlsplit(service.input_url).hostname
    return host if host and urlsplit(service.input_url).scheme == "https" and not _is_ip(host) else None


async def _sni_test(trace: Trace, settings: ProbeSettings, catalogue: Catalogue, service: Service,
                    target_sni: str) -> None:
    from netvigil.probe.sni_test import sni_throughput

    control_sni = settings.control_sni or helper_sni(catalogue.service(CONTROL_SERVICE)) or "example.com"
    if service.name == CONTROL_SERVICE:
        target_sni = control_sni
    quic = any("quic" in e.protocols for e in service.endpoints)
    trace.sni_throughput = await sni_throughput(trace, settings, target_sni, control_sni, quic=quic)


async def run_web(settings: ProbeSettings, url: str, *, listener: Listener | None = None,
                  service: str | None = None, run_id: str | None = None) -> Measurement:
    """One URL: DNS, then TCP/TLS/HTTP GET of its path to every address."""
    warm_up(settings, False)
    wall = dt.datetime.now(dt.timezone.utc)
    trace = Trace(listener)
    ctx = MeasureRun(trace, settings, asyncio.Semaphore(settings.parallelism))
    current = url
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(current)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        protos = ("dns", "tcp", "tls", "https") if parts.scheme == "https" else ("dns", "tcp", "http")
        host = parts.hostname or ""
        seen = len(trace.requests)
        await measure(ctx, Target(domain=host, protocols=protos, port=parts.port, path=path,
                                  is_ip=_is_ip(host)))
        current = _redirect(trace.requests[seen:], current)
        if current is None:
            break
    ann: dict = {}
    if service:
        ann["service"] = service
    if run_id:
        ann["run_id"] = run_id
    return envelope(settings, WEB_TEST, url, trace, wall, ann)


def _redirect(requests: list, url: str) -> str | None:
    """The http(s) URL a successful 3xx response points to (followed as OONI does)."""
    from urllib.parse import urljoin

    for tx in requests:
        resp = tx.response
        if tx.failure is None and resp is not None and resp.code in (301, 302, 303, 307, 308):
            location = next((v for k, v in resp.headers_list or [] if k.lower() == "location"), None)
            if location:
                target = urljoin(url, location)
                if urlsplit(target).scheme in ("http", "https") and urlsplit(target).hostname:
                    return target
    return None


def new_run_id() -> str:
    return f"{int(time.time())}-{secrets.token_hex(4)}"
