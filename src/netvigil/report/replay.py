"""Re-date recorded probe measurements into a scenario timeline.

Tests, benchmarks and offline demos of the observatory need hours of measurements from
several networks with a known onset and end. Rather than inventing measurements, this
takes real ones the probe recorded against loopback servers (one per technique, e.g.
tests/data/netvigil/service_twitter_rst_after_hello.jsonl) and re-stamps time, network and
round ids, and maps the loopback addresses of the recording (127.0.0.N) to routable-looking
ones (45.0.0.N, 2a05::1, never contacted: this is data) so the analysis judges them as it would
measurements from the field rather than as bogon answers. Every other byte is what the
probe wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from netvigil.model.measurement import Measurement

FMT = "%Y-%m-%d %H:%M:%S"


class Network(msgspec.Struct):
    asn: str
    name: str
    # (start, end, sample name) windows in which this network's service measurements come from
    # that sample instead of the ok one; times "YYYY-MM-DD HH:MM:SS"
    windows: list[tuple[str, str, str]] = []
    vpn: bool = False  # also measure the service through a VPN path each round


def load_samples(folder: Path) -> dict[str, list[dict]]:
    """sample name (file stem without 'service_twitter_') -> its measurements as dicts."""
    out = {}
    for path in sorted(Path(folder).glob("service_twitter*.jsonl")):
        name = path.stem.removeprefix("service_twitter").lstrip("_") or "ok"
        out[name] = [msgspec.json.decode(line) for line in path.read_bytes().splitlines() if line.strip()]
    return out


MAPPING = ((b'"127.0.0.', b'"45.0.0.'), (b'"::1"', b'"2a05::1"'), (b'"[::1]:', b'"[2a05::1]:'))


def restamp(d: dict, t: datetime, net: Network, cc: str, round_id: str, path: str = "direct") -> Measurement:
    raw = msgspec.json.encode(d)
    for loopback, field in MAPPING:
        raw = raw.replace(loopback, field)
    m = msgspec.json.decode(raw)
    m["probe_ip"] = "127.0.0.1"
    stamp = t.strftime(FMT)
    m.update(measurement_start_time=stamp, test_start_time=stamp, probe_asn=net.asn, probe_cc=cc,
             probe_network_name=net.name, measurement_uid=None,
             report_id=f"{t.strftime('%Y%m%dT%H%M%SZ')}_service_{cc}_{net.asn[2:]}_n1_{round_id}{path[0]}")
    ann = dict(m.get("annotations") or {})
    ann.update(run_id=f"{net.asn}-{round_id}-{path}", path=path)
    m["annotations"] = ann
    return msgspec.convert(m, Measurement)


def timeline(samples: dict[str, list[dict]], networks: list[Network], *, cc: str, start: str, end: str,
             every_minutes: int = 10) -> Iterator[Measurement]:
    """Each round, each network: the service measurement (ok or the window's sample) and its control."""
    t, stop = datetime.strptime(start, FMT), datetime.strptime(end, FMT)
    n = 0
    while t < stop:
        stamp = t.strftime(FMT)
        for net in networks:
            name = next((s for a, b, s in net.windows if a <= stamp < b), "ok")
            for d in samples[name]:
                yield restamp(d, t, net, cc, f"r{n:05d}")
            if net.vpn:
                service = [d for d in samples["ok"] if (d.get("annotations") or {}).get("service") != "control"]
                for d in service:
                    yield restamp(d, t + timedelta(seconds=30), net, cc, f"r{n:05d}", path="vpn")
        t += timedelta(minutes=every_minutes)
        n += 1


def russia_2022(samples: dict[str, list[dict]], *, start: str = "2022-02-26 07:00:00",
                end: str = "2022-02-26 13:00:00", onset: str = "2022-02-26 09:00:00",
                until: str = "2022-02-26 11:00:00") -> list[Measurement]:
    """Twitter restricted on two of three providers (different techniques), VPN works."""
    nets = [
        Network("AS12389", "Rostelecom", [(onset, until, "timeout_after_hello")], vpn=True),
        Network("AS8359", "MTS", [(onset, until, "rst_after_hello")]),
        Network("AS31213", "MegaFon"),
    ]
    return list(timeline(samples, nets, cc="RU", start=start, end=end))
