"""CLI of the agent area: `netvigil agent`, the long-running probe of a fleet (docs/agent.md)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer

from netvigil.errors import UsageError


def agent(
    server: str = typer.Option(..., "--server", help="The observatory's URL, e.g. https://obs.example.org"),
    data_dir: Path = typer.Option(Path("netvigil-agent"), "--data-dir",
                                  help="Identity (0600), queue, last check-in, byte budget, last location."),
    once: bool = typer.Option(False, "--once", help="Run one round (check in, measure, submit) and exit."),
    invite_file: Path = typer.Option(None, "--invite-file",
                                     help="The operator's invite token, for an observatory that enrols by invitation."),
    daily_mb: float = typer.Option(25.0, "--daily-mb", help="Megabytes a day for throughput tests (a mobile plan)."),
    cadence: float = typer.Option(None, "--cadence", help="Seconds between rounds (default: what the observatory says)."),
    resolver: str = typer.Option(None, "--resolver", help="UDP DNS resolver HOST:PORT (default: system resolver)."),
    ca_file: Path = typer.Option(None, "--ca-file", help="Extra trust anchors (PEM), e.g. a lab's CA."),
    port_map: str = typer.Option(None, "--port-map", help="Test servers on other ports, e.g. 443=8443,80=8080."),
    helper: list[str] = typer.Option([], "--helper", help="Test helper HOST:PORT (default: the observatory's)."),
    probe_asn: str = typer.Option("AS0", "--probe-asn", help="Override the located ASN, e.g. AS12389."),
    probe_cc: str = typer.Option("ZZ", "--probe-cc", help="Override the located country, e.g. RU."),
    timeout: float = typer.Option(10.0, "--timeout", help="Per-step timeout in seconds."),
    url: list[str] = typer.Option([], "--url", help="A URL to measure every round besides the services (repeatable)."),
    path: str = typer.Option("direct", "--path", help="Label of the path: direct, vpn or proxy (e.g. a VPN user)."),
    probe_network_name: str = typer.Option(None, "--probe-network-name", help="Override the located network name."),
    scenario_time: str = typer.Option(None, "--scenario-time",
                                      help='A lab\'s clock "YYYY-MM-DD HH:MM:SS", written as measurement_start_time.'),
    server_timeout: float = typer.Option(10.0, "--server-timeout", help="Seconds for one request to the observatory."),
    flush: bool = typer.Option(False, "--flush", help="Only send what is queued (no check-in, no measuring), then exit."),
    driven: bool = typer.Option(False, "--driven", help="Rounds on command: 'round [TIME]' or 'flush' a line on stdin, "
                                "one JSON answer a line on stdout, until end of input (a lab's clock)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress on stderr."),
) -> None:
    """Run a probe of the fleet: enrol once, then check in, measure and submit on a schedule.

    Nothing measured is lost: measurements are on disk before the next is
    taken and are sent when the observatory is reachable. Runs as a systemd
    service (deploy/systemd/netvigil-agent.service).

    Example: netvigil agent --server https://obs.example.org --data-dir /var/lib/netvigil-agent

    Send what is still queued, then exit: netvigil agent --server https://obs.example.org --flush

    Driven by a harness's clock (docs/agent.md): echo round | netvigil agent --server URL --driven
    """
    import re

    from netvigil.agent.loop import Agent, AgentConfig
    from netvigil.collector.probes import read_invite
    from netvigil.model.times import TIME_RE
    from netvigil.probe.settings import ProbeSettings, parse_helper, parse_port_map, parse_resolver
    from netvigil.targets.testlists import check_url

    if not server.startswith(("http://", "https://")):
        raise UsageError(f"--server must start with http:// or https://, got {server!r}")
    if daily_mb < 0 or timeout <= 0 or server_timeout <= 0 or (cadence is not None and cadence < 1):
        raise UsageError("--daily-mb must be >= 0, --timeout and --server-timeout > 0 and --cadence >= 1")
    if path not in ("direct", "vpn", "proxy"):
        raise UsageError(f"bad --path {path!r}", hint="expected direct, vpn or proxy")
    if scenario_time is not None and not TIME_RE.match(scenario_time):
        raise UsageError(f"bad --scenario-time {scenario_time!r}", hint='expected "YYYY-MM-DD HH:MM:SS"')
    if not re.fullmatch(r"AS\d+", probe_asn) or not re.fullmatch(r"[A-Z]{2}", probe_cc):
        raise UsageError(f"bad --probe-asn {probe_asn!r} or --probe-cc {probe_cc!r}", hint="e.g. AS12389 and RU")
    if ca_file is not None and not ca_file.is_file():
        raise UsageError("cannot read CA file", where=str(ca_file))
    invite = read_invite(invite_file) if invite_file is not None else None
    probe = ProbeSettings(resolver=parse_resolver(resolver) if resolver else None,
                          ca_file=str(ca_file) if ca_file else None,
                          port_map=parse_port_map(port_map) if port_map else {},
                          helpers=tuple(parse_helper(h) for h in helper), probe_asn=probe_asn, probe_cc=probe_cc,
                          probe_network_name=probe_network_name, path=path, scenario_time=scenario_time,
                          timeout=timeout)
    config = AgentConfig(server=server.rstrip("/"), data_dir=str(data_dir), invite=invite,
                         daily_bytes=int(daily_mb * 1_000_000), probe=probe, cadence=cadence,
                         urls=tuple(check_url(u) for u in url), server_timeout=server_timeout)

    def say(line: str) -> None:
        if not quiet:
            print(f"netvigil agent: {line}", file=sys.stderr, flush=True)

    a = Agent(config, say=say)
    signal.signal(signal.SIGTERM, lambda *_: a.stop.set())  # systemd stop: end after this round
    try:
        if flush:
            if a.flush():
                raise typer.Exit(1)  # something stays queued: the caller may try again later
        elif driven:
            from netvigil.agent.driven import serve_commands

            def write(data: bytes) -> None:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()

            serve_commands(a, sys.stdin, write)
        else:
            a.run(once=once)
    finally:
        a.close()


def register(app: typer.Typer) -> None:
    app.command("agent")(agent)
