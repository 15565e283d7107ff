"""CLI commands of the observatory area: serve, report, subscribe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from netvigil.errors import StoreError, UsageError

DEFAULT_DATA_DIR = os.environ.get("NETVIGIL_DATA_DIR", "netvigil-data")


def serve(
    port: int = typer.Option(8470, "--port", help="TCP port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Log, store and subscriptions."),
    clickhouse_url: str = typer.Option(None, "--clickhouse-url", help="Use a ClickHouse server instead of chdb."),
    admin_token_file: Path = typer.Option(
        None, "--admin-token-file",
        help="File holding the token for admin endpoints (or set NETVIGIL_ADMIN_TOKEN; disabled without one)."),
    probe_tokens_file: Path = typer.Option(
        None, "--probe-tokens-file",
        help="File with trusted probes' tokens, one a line (or NETVIGIL_PROBE_TOKENS=T1,T2; no rate limit)."),
    require_probe_token: bool = typer.Option(False, "--require-probe-token",
                                             help="Accept submissions only from trusted probes."),
    rate: float = typer.Option(50.0, "--rate", help="Measurements/s allowed per untrusted probe address."),
    no_analysis: bool = typer.Option(False, "--no-analysis", help="Collect only; do not run the analysis."),
    public_url: str = typer.Option(
        None, "--public-url",
        help="Base of absolute links (next_url, alert links), e.g. https://obs.example.org (default http://HOST:PORT)."),
    allow_private_webhooks: bool = typer.Option(
        False, "--allow-private-webhooks",
        help="Let webhooks go to loopback and private addresses (a lab; refused by default: SSRF)."),
    header_timeout: float = typer.Option(10.0, "--header-timeout", help="Seconds a client has to send request headers."),
    body_timeout: float = typer.Option(120.0, "--body-timeout", help="Seconds a client has to send a body after its headers."),
    max_per_address: int = typer.Option(64, "--max-connections-per-address", help="Open connections per client address."),
    max_connections: int = typer.Option(4096, "--max-connections", help="Open connections in all (503 past it)."),
    trusted_proxy: list[str] = typer.Option(
        [], "--trusted-proxy", help="Address of a reverse proxy whose X-Forwarded-For is believed (repeatable)."),
    max_batch_bytes: int = typer.Option(8 << 20, "--max-batch-bytes", help="Largest JSONL batch body (413 past it)."),
    burst: float = typer.Option(None, "--burst", help="Measurements an untrusted address may send at once (default: 10 x --rate)."),
    max_open_reports: int = typer.Option(128, "--max-open-reports", help="Open reports per untrusted address."),
    report_idle_hours: float = typer.Option(12.0, "--report-idle-hours", help="A report without submissions expires after this."),
    helper_listen: str = typer.Option(None, "--helper-listen",
                                      help="Also run the test helper on HOST:PORT (TCP and UDP), as `netvigil helper`."),
    invite_file: Path = typer.Option(
        None, "--invite-file",
        help="Enrol probes only with this invite token (or NETVIGIL_INVITE_TOKEN); open enrolment without one."),
    agent_service: list[str] = typer.Option([], "--agent-service",
                                            help="Service agents measure (repeatable; default: the whole catalogue)."),
    agent_cadence: float = typer.Option(3600.0, "--agent-cadence", help="Seconds between an agent's rounds (+-25% jitter)."),
    agent_helper: list[str] = typer.Option([], "--agent-helper",
                                           help="Test helper HOST:PORT handed to agents at check-in (repeatable)."),
    network_rate: float = typer.Option(4.0, "--network-rate",
                                       help="A /24 (/64) may send this many times --rate, however many probes it holds."),
    enrol_per_hour: float = typer.Option(20.0, "--enrol-per-hour", help="Probe enrolments per /24 (/64) per hour."),
    trusted_invite_file: Path = typer.Option(
        None, "--trusted-invite-file",
        help="A second invite token (or NETVIGIL_TRUSTED_INVITE_TOKEN): probes enrolled with it are trusted, "
             "their word alone publishes (the operator's own probes)."),
    quorum: int = typer.Option(
        2, "--quorum", help="Independent probes (distinct ids on distinct /24s or /64s) that must agree before an "
                            "incident, status cell or alert is published; trusted probes publish alone."),
    max_analysis_lag: float = typer.Option(
        None, "--max-analysis-lag",
        help="Refuse untrusted submissions (503, Retry-After) while the analysis is more than this many seconds "
             "behind; probes keep them queued (default: never refuse)."),
    admin_token: str = typer.Option(None, "--admin-token", hidden=True),
    probe_token: list[str] = typer.Option([], "--probe-token", hidden=True),
) -> None:
    """Run the observatory: collector + API + live dashboard.

    Secrets never go on the command line, which every user sees in `ps`.
    The admin token comes from --admin-token-file or NETVIGIL_ADMIN_TOKEN.
    Probe tokens come from --probe-tokens-file or NETVIGIL_PROBE_TOKENS.

    Example: netvigil serve --port 8470 --data-dir ./obs --admin-token-file ./admin.token

    Behind a reverse proxy on the same host (docs/security.md):
    netvigil serve --trusted-proxy 127.0.0.1 --public-url https://obs.example.org

    Publish only what 3 independent probes agree on, or what your own probes say:
    netvigil serve --quorum 3 --trusted-invite-file ./own-probes.invite

    Under more load than the analysis keeps up with, keep status within seconds of arrival:
    netvigil serve --max-analysis-lag 3
    """
    from netvigil.cli.secret_args import refuse_in_argv, secret_from, token_list
    from netvigil.collector.connections import ConnectionLimits
    from netvigil.observatory.serve import _check_port, run_observatory

    if admin_token is not None:
        raise refuse_in_argv("--admin-token", "--admin-token-file", "NETVIGIL_ADMIN_TOKEN")
    if probe_token:
        raise refuse_in_argv("--probe-token", "--probe-tokens-file", "NETVIGIL_PROBE_TOKENS")
    _check_port(host, port)
    for name, value in (("--rate", rate), ("--burst", burst if burst is not None else 1), ("--max-batch-bytes",
                        max_batch_bytes), ("--max-open-reports", max_open_reports),
                        ("--report-idle-hours", report_idle_hours)):
        if value <= 0:
            raise UsageError(f"{name} must be positive, got {value}")
    if quorum < 1:
        raise UsageError(f"--quorum must be 1 or more, got {quorum}")
    if max_analysis_lag is not None and not max_analysis_lag > 0:
        raise UsageError(f"--max-analysis-lag must be positive, got {max_analysis_lag}")
    limits = ConnectionLimits.from_options(header_timeout, body_timeout, max_per_address, max_connections,
                                           trusted_proxy)
    token = secret_from(admin_token_file, "NETVIGIL_ADMIN_TOKEN", "--admin-token-file", min_length=16)
    tokens = token_list(probe_tokens_file, "NETVIGIL_PROBE_TOKENS", "--probe-tokens-file")
    base = check_public_url(public_url) if public_url else default_public_url(host, port)
    fleet = _fleet_settings(invite_file, agent_service, agent_cadence, agent_helper, network_rate, enrol_per_hour)
    fleet.trusted_invite_token = _trusted_invite(trusted_invite_file, fleet.invite_token)
    helper = _start_helper(helper_listen) if helper_listen else None
    typer.echo(f"netvigil observatory on http://{host}:{port}/ (data in {data_dir})", err=True)
    try:
        run_observatory(data_dir, host, port, engine=clickhouse_url or "chdb", admin_token=token,
                        probe_tokens=frozenset(tokens), require_probe_token=require_probe_token,
                        rate_per_second=rate, rate_burst=burst or max(rate * 10, 10), analysis=not no_analysis,
                        public_url=base, allow_private_webhooks=allow_private_webhooks, limits=limits,
                        max_batch_bytes=max_batch_bytes, max_open_reports=max_open_reports,
                        report_idle_hours=report_idle_hours, quorum=quorum, max_analysis_lag=max_analysis_lag,
                        extra={"fleet": fleet})
    finally:
        if helper is not None:
            helper.stop()


def _fleet_settings(invite_file, services, cadence, helpers, network_rate, enrol_per_hour):  # noqa: ANN202
    """The probe fleet's options (docs/agent.md) checked, as collector/fleet.py's FleetSettings."""
    from netvigil.collector.fleet import FleetSettings
    from netvigil.collector.probes import read_invite
    from netvigil.probe.settings import parse_helper
    from netvigil.targets import load_catalogue

    for option, value in (("--agent-cadence", cadence), ("--network-rate", network_rate),
                          ("--enrol-per-hour", enrol_per_hour)):
        if not value > 0:
            raise UsageError(f"{option} must be positive, got {value}")
    catalogue = load_catalogue()
    for name in services:
        catalogue.service(name)
    return FleetSettings(invite_token=read_invite(invite_file), services=tuple(services), cadence_seconds=cadence,
                         helpers=tuple(parse_helper(h) for h in helpers), network_factor=network_rate,
                         enrol_per_hour=enrol_per_hour)


def _trusted_invite(path: Path | None, invite: str | None) -> str | None:
    """The trusted invite token (analysis/incidents/quorum.py); it must differ from the plain invite."""
    from netvigil.collector.probes import read_invite

    token = read_invite(path, env="NETVIGIL_TRUSTED_INVITE_TOKEN")
    if token is not None and token == invite:
        raise UsageError("--trusted-invite-file holds the same token as --invite-file: every invited probe would "
                         "be trusted", hint="give the operator's own probes a second token")
    return token


def _start_helper(listen: str):  # noqa: ANN202
    """The test helper beside the observatory (docs/helper.md), with `netvigil helper`'s defaults."""
    from netvigil.cli.helper import helper_options
    from netvigil.helper.server import HelperThread

    address, limits = helper_options(listen, 32, 8 << 20, False)
    helper = HelperThread(address.host, address.port, limits=limits).start()
    typer.echo(f"netvigil helper on {helper.helper.address} (TLS/TCP and QUIC/UDP, any SNI)", err=True)
    return helper


def check_public_url(url: str) -> str:
    """--public-url: an http(s) URL with a host and no query; kept without its trailing slash."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise UsageError(f"--public-url {url!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UsageError(f"--public-url must be like https://obs.example.org[/prefix], got {url!r}")
    return url.rstrip("/")


def default_public_url(host: str, port: int) -> str | None:
    """http://HOST:PORT as served; None (relative links) when listening on every address."""
    if host in ("0.0.0.0", "::", ""):
        typer.echo("note: links in the API and alerts are relative; give --public-url for absolute ones",
                   err=True)
        return None
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _fetch_incident(url: str, incident_id: str, page_size: int = 10000):
    """(incident, its aggregates, its statement) from a running observatory. Aggregates are
    read page by page (next_url) so a long incident is never cut at a page size; an outage
    (service "*") reads every service."""
    import httpx
    import msgspec

    from netvigil._http import tls_context
    from netvigil.model.records import AggregateRow, Incident
    from netvigil.report.chart import chart_query

    base = url.rstrip("/")
    http = httpx.Client(timeout=30, verify=tls_context())  # one client for the incident and every page
    try:
        r = http.get(f"{base}/api/v1/incidents/{incident_id}")
        if r.status_code == 404:
            raise UsageError(f"incident {incident_id!r} not found at {base}")
        r.raise_for_status()
        body = r.json()
        inc = msgspec.convert({k: v for k, v in body.items() if k not in ("text", "as_of")}, Incident)
        params = {k: v for k, v in chart_query(inc).items() if v is not None} | {"limit": page_size}
        rows: list[AggregateRow] = []
        next_url: str | None = f"{base}/api/v1/aggregates"
        for _ in range(100_000):  # bounded
            a = http.get(next_url, params=params)
            a.raise_for_status()
            page = a.json()
            rows += msgspec.convert(page["results"], list[AggregateRow])
            nxt = page["metadata"].get("next_url")
            if not nxt:
                break
            next_url, params = (nxt if nxt.startswith("http") else base + nxt), None
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot read incident from {base}: {exc}") from None
    except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
        raise UsageError(f"{base} answered something that is not a netvigil incident: {exc}") from None
    finally:
        http.close()
    return inc, rows, body.get("text")


def _local_incident(data_dir: Path, incident_id: str):
    import asyncio

    from netvigil.observatory.analyser import store_dir
    from netvigil.report.chart import aggregates_for

    store = store_dir(Path(data_dir))
    if not store.exists():
        raise UsageError(f"no observatory store in {data_dir}", hint="give --data-dir of a `netvigil serve`")
    try:
        from netvigil.analysis.analysed_store import AnalysedStore
    except ImportError as exc:
        raise StoreError(f"analysis is not available: {exc}") from None
    try:
        obs = AnalysedStore(store)
    except Exception as exc:
        raise StoreError(f"cannot open the store ({type(exc).__name__}: {exc})", where=str(store),
                         hint="if `netvigil serve` runs on it, use --url http://HOST:PORT") from None
    try:
        inc = obs.incident(incident_id)
        if inc is None:
            known = ", ".join(i.id for i in obs.incidents()[:10]) or "none"
            raise UsageError(f"incident {incident_id!r} not found (known: {known})")
        from netvigil.report.enrich import StoreReader, told
        from netvigil.report.text import incident_text

        status = obs.status(country=inc.country)
        latest = max((r.last_measurement for r in status if r.last_measurement), default=None)
        inc, facts = asyncio.run(told(StoreReader(obs), inc, latest or ""))
        return inc, aggregates_for(obs, inc), incident_text(inc, facts)
    finally:
        obs.close()


def report(
    incident_id: str = typer.Argument(..., help="Incident id (see `netvigil incidents` or the dashboard)."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Observatory data directory."),
    out_dir: Path = typer.Option(Path("."), "--out-dir", help="Where to write text, JSON, SVG and PNG."),
    url: str = typer.Option(None, "--url", help="Read from a running observatory instead of --data-dir."),
) -> None:
    """Write an incident's statement (text), chart (SVG, PNG) and JSON.

    The id is the one the dashboard, `/api/v1/incidents` and `netvigil demo` print (16 hex
    digits). The statement is dated by the newest data of the store.

    Example: netvigil report 535c4801a8b567d3 --data-dir ./netvigil-demo/observatory --out-dir ./out
    """
    import msgspec

    from netvigil.report.chart import incident_chart, render

    inc, rows, text = _fetch_incident(url, incident_id) if url else _local_incident(data_dir, incident_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out-dir: {exc.strerror}", where=str(out_dir)) from None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in inc.id)
    if text is None:
        from netvigil.report.text import incident_text

        text = incident_text(inc)
    chart = incident_chart(inc, rows, permalink=f"{url.rstrip('/')}/incident/{inc.id}" if url else None)
    spec = chart.to_dict()  # validated once for both drawings
    files = {f"{safe}.txt": (text + "\n").encode(), f"{safe}.svg": render(spec, "svg"),
             f"{safe}.png": render(spec, "png"),
             f"{safe}.json": msgspec.json.format(msgspec.json.encode({**msgspec.to_builtins(inc), "text": text}))}
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    typer.echo(text)
    typer.echo("wrote " + ", ".join(str(out_dir / n) for n in files), err=True)


def subscribe(
    url: str = typer.Argument(None, help="Webhook URL (a public address) that receives signed JSON alerts."),
    secret_file: Path = typer.Option(
        None, "--secret-file",
        help="File holding the HMAC-SHA256 key (or NETVIGIL_WEBHOOK_SECRET; default: generated and printed once)."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Observatory data directory."),
    event: list[str] = typer.Option([], "--event", help="start, change, end or withdrawn (repeatable; default all; withdrawn also goes with start)."),
    country: str = typer.Option(None, "--country", help="Only incidents in this country (e.g. RU)."),
    service: str = typer.Option(None, "--service", help="Only incidents of this service (e.g. twitter)."),
    list_: bool = typer.Option(False, "--list", help="List subscriptions (passwords masked, secrets never shown)."),
    remove: str = typer.Option(None, "--remove", help="Remove the subscription with this id."),
    allow_private_webhooks: bool = typer.Option(
        False, "--allow-private-webhooks", help="Accept a loopback or private target (a lab; the server must allow it too)."),
    secret: str = typer.Option(None, "--secret", hidden=True),
) -> None:
    """Subscribe a webhook to incident start, change and end alerts.

    Deliveries are signed over a delivery id, a timestamp and the body (docs/api.md, Alerts).
    Without --secret-file or NETVIGIL_WEBHOOK_SECRET a secret is generated and printed once.
    The target must resolve to public addresses, checked now and at every delivery.

    Example: netvigil subscribe https://hooks.example.org/netvigil --secret-file ./hook.secret --data-dir ./obs
    """
    from netvigil.cli.secret_args import refuse_in_argv, secret_from
    from netvigil.report.alerts import Subscriptions

    if secret is not None:
        raise refuse_in_argv("--secret", "--secret-file", "NETVIGIL_WEBHOOK_SECRET")
    subs = Subscriptions(Path(data_dir) / "subscriptions.json", allow_private=allow_private_webhooks)
    if list_:
        for s in subs.all():
            typer.echo(json.dumps(s.public()))
        return
    if remove:
        if not subs.remove(remove):
            raise UsageError(f"no subscription with id {remove!r} (see --list)")
        typer.echo(f"removed {remove}")
        return
    if not url:
        raise UsageError("give a webhook URL (or --list / --remove ID)")
    given = secret_from(secret_file, "NETVIGIL_WEBHOOK_SECRET", "--secret-file")
    sub = subs.add(url, secret=given, events=event or None, country=country, service=service)
    typer.echo(f"subscribed {sub.id}: {sub.public()['url']} ({', '.join(sub.events)}, signed)")
    if given is None:
        typer.echo(f"secret (shown once, give it to the receiver): {sub.secret}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("serve")(serve)
    app.command("report")(report)
    app.command("subscribe")(subscribe)
