"""CLI commands of the probe area: `netvigil probe` and `netvigil show`.

Imports of the probe engine are inside the commands so that `netvigil --help` and the
other areas' commands stay quick to start.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import typer

from netvigil.errors import UsageError
from netvigil.model import times

_TIME = times.TIME_RE


def probe(
    urls: list[str] = typer.Argument(None, help="URLs to measure (web experiment), e.g. https://example.com/"),
    service: list[str] = typer.Option([], "--service", "-s", help="Catalogue service to measure (repeatable)."),
    list_file: Path = typer.Option(None, "--list", help="Citizen Lab test-list CSV of URLs to measure."),
    resolver: str = typer.Option(None, "--resolver", help="UDP DNS resolver HOST:PORT (default: system resolver)."),
    ca_file: Path = typer.Option(None, "--ca-file", help="Extra trust anchors (PEM), e.g. the lab CA."),
    proxy: str = typer.Option(None, "--proxy", help="socks5://IP:PORT or http://IP:PORT circumvention path."),
    timeout: float = typer.Option(10.0, "--timeout", help="Per-step timeout in seconds."),
    out: str = typer.Option("-", "--out", "-o", help="JSONL output file, '-' for stdout."),
    probe_asn: str = typer.Option("AS0", "--probe-asn", help="The probe's ASN, e.g. AS12389 (default: located via --helper's echo)."),
    probe_cc: str = typer.Option("ZZ", "--probe-cc", help="The probe's country code, e.g. RU (default: located via --helper)."),
    probe_network_name: str = typer.Option(None, "--probe-network-name", help="Override the network name."),
    controls: bool = typer.Option(True, "--controls/--no-controls",
                                  help="Also measure the control service in the same run (with --service)."),
    path: str = typer.Option(None, "--path", help="Label of the path: direct, vpn or proxy."),
    scenario_time: str = typer.Option(None, "--scenario-time",
                                      help='Lab clock "YYYY-MM-DD HH:MM:SS" written as measurement_start_time.'),
    submit: str = typer.Option(None, "--submit", help="Collector URL to submit measurements to."),
    helper: list[str] = typer.Option([], "--helper", help="Test helper HOST:PORT (netvigil helper) for the SNI-keyed "
                                     "throughput and QUIC test; repeatable, tried in order."),
    location_file: Path = typer.Option(None, "--location-file", help="Where to remember the last location found "
                                       "(ASN, country, name; never the address), used when no helper answers."),
    sample_bytes: int = typer.Option(64_000, "--sample-bytes", help="Most bytes read of a catalogue object."),
    sample_seconds: float = typer.Option(3.0, "--sample-seconds", help="Time bound of the throughput sample."),
    dns_window: float = typer.Option(0.25, "--dns-window", help="Seconds to keep listening after the first DNS answer."),
    port_map: str = typer.Option(None, "--port-map", help="Test servers on other ports, e.g. 443=8443,80=8080."),
    queue_dir: Path = typer.Option(None, "--queue-dir", help="Where --submit keeps what it could not send."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Measure services and URLs from this network; write OONI-format measurements (JSONL).

    Example: netvigil probe --service twitter --helper helper.example.org:443 --out m.jsonl
    """
    from netvigil.probe.proxy import parse_proxy
    from netvigil.probe.settings import ProbeSettings, parse_helper, parse_port_map, parse_resolver
    from netvigil.targets import load_catalogue, load_test_list
    from netvigil.targets.testlists import check_url

    catalogue = load_catalogue()
    url_list = [check_url(u) for u in (urls or [])]
    if list_file is not None:
        url_list += [e.url for e in load_test_list(list_file)]
    from netvigil.probe.runner import plan_services

    services = plan_services(catalogue, list(service), controls)
    if not services and not url_list:
        raise UsageError("nothing to measure", hint="give URLs, --service NAME or --list FILE")
    if ca_file is not None and not ca_file.is_file():
        raise UsageError("cannot read CA file", where=str(ca_file))
    if scenario_time is not None and not _TIME.match(scenario_time):
        raise UsageError(f"bad --scenario-time {scenario_time!r}", hint='expected "YYYY-MM-DD HH:MM:SS"')
    if not re.fullmatch(r"AS\d+", probe_asn):
        raise UsageError(f"bad --probe-asn {probe_asn!r}", hint="expected AS followed by digits, e.g. AS12389")
    if not re.fullmatch(r"[A-Z]{2}", probe_cc):
        raise UsageError(f"bad --probe-cc {probe_cc!r}", hint="expected two capital letters, e.g. RU")
    if path is not None and path not in ("direct", "vpn", "proxy"):
        raise UsageError(f"bad --path {path!r}", hint="expected direct, vpn or proxy")
    if timeout <= 0 or sample_bytes < 0 or sample_seconds <= 0 or dns_window < 0:
        raise UsageError("--timeout, --sample-seconds must be > 0 and --sample-bytes, --dns-window >= 0")
    proxy_url = parse_proxy(proxy) if proxy else None
    settings = ProbeSettings(
        resolver=parse_resolver(resolver) if resolver else None,
        ca_file=str(ca_file) if ca_file else None, proxy=proxy_url, timeout=timeout,
        dns_window=dns_window, sample_bytes=sample_bytes, sample_seconds=sample_seconds,
        helpers=tuple(parse_helper(h) for h in helper), location_file=str(location_file) if location_file else None,
        probe_asn=probe_asn, probe_cc=probe_cc, probe_network_name=probe_network_name,
        path=path or ("proxy" if proxy_url else "direct"), scenario_time=scenario_time,
        port_map=parse_port_map(port_map) if port_map else {})
    from netvigil.probe.output import run_and_write

    run_and_write(settings, catalogue, services=services, urls=url_list, out=out, submit=submit,
                  queue_dir=queue_dir, quiet=quiet)


def show(
    files: list[Path] = typer.Argument(..., help="JSONL measurement files ('-' for stdin)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also list every DNS response and event count."),
) -> None:
    """Print a human summary of each measurement: per endpoint DNS, TCP/TLS/HTTP/QUIC, throughput.

    Example: netvigil show m.jsonl
    """
    from netvigil.probe.show import show_files

    show_files(files, verbose=verbose, stream=sys.stdout)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("probe", no_args_is_help=True)(probe)
    app.command("show")(show)
