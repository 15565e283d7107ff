"""Probe settings: everything a run needs besides its targets (CLI flags map 1:1)."""

from __future__ import annotations

import ipaddress

import msgspec

from netvigil.errors import UsageError
from netvigil.probe.proxy import ProxyURL


class ProbeSettings(msgspec.Struct, kw_only=True):
    """How one probe run measures (resolver, CA, proxy, timeouts, helpers, claimed location):
    one struct, so the CLI, the agent and the lab set the same things."""

    resolver: tuple[str, int] | None = None  # UDP resolver; None = system resolver
    ca_file: str | None = None
    proxy: ProxyURL | None = None
    timeout: float = 10.0  # per step
    dns_window: float = 0.25  # keep listening this long after the first DNS answer
    sample_bytes: int = 64_000  # most bytes read of a catalogue object (its throughput sample)
    sample_seconds: float = 3.0
    helpers: tuple[str, ...] = ()  # test helpers HOST:PORT, tried in order (netvigil helper)
    helper_rounds: int = 3  # SNI-keyed throughput: rounds of (download, upload) x (target, control)
    # per transfer: 3 rounds x 4 flows and the QUIC checks ~299 KB of IP packets with handshakes and
    # headers (benchmarks/bench_probe_sni.py). Not fewer: at 3 Mbit/s a flow must last the
    # analysis' 0.05 s to be timed (19,000 found quiet-200's general throttling 8-20 times in 96, 20,000 42)
    helper_bytes: int = 20_000
    helper_seconds: float = 4.0  # time bound of one helper transfer
    control_sni: str | None = None  # default: the catalogue's first control domain
    location_file: str | None = None  # last known location (no address), used when no helper answers
    parallelism: int = 16  # concurrent connections per run
    max_ips: int = 4  # per address family and endpoint
    probe_asn: str = "AS0"
    probe_cc: str = "ZZ"
    probe_network_name: str | None = None
    path: str = "direct"  # direct | vpn | proxy
    scenario_time: str | None = None  # "YYYY-MM-DD HH:MM:SS" of the lab's clock
    port_map: dict[int, int] = {}  # e.g. {443: 8443}: test servers on unprivileged ports

    def port(self, port: int) -> int:
        return self.port_map.get(port, port)


def parse_port_map(text: str) -> dict[int, int]:
    """"443=8443,80=8080" -> {443: 8443, 80: 8080}."""
    out: dict[int, int] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        try:
            a, b = (int(x) for x in item.split("="))
            if not (0 < a < 65536 and 0 < b < 65536):
                raise ValueError
        except ValueError:
            raise UsageError(f"bad --port-map item {item!r}", hint="expected 443=8443,80=8080") from None
        out[a] = b
    return out


def parse_helper(text: str) -> str:
    """HOST:PORT or [V6]:PORT of a test helper (the port is required), normalised."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.rpartition(":")
    ok = bool(host) and port.isdigit() and 0 < int(port) < 65536 and " " not in host and "/" not in host
    if not ok:
        raise UsageError(f"bad --helper {text!r}", hint="expected HOST:PORT, e.g. 127.0.0.1:4443")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_resolver(text: str) -> tuple[str, int]:
    """HOST:PORT or [V6]:PORT (PORT defaults to 53); the host must be an IP address."""
    text = text.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ipaddress.ip_address(host)
        port_num = int(port)
        if not 0 < port_num < 65536:
            raise ValueError
    except ValueError:
        raise UsageError(f"bad --resolver {text!r}", hint="expected IP:PORT, e.g. 127.0.0.1:5353") from None
    return host, port_num
