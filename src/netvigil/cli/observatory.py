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
    admin_token: str = typer.Option(None, "--admin-token", envvar="NETVIGIL_ADMIN_TOKEN",
                                    help="Token for admin endpoints (disabled without one)."),
    probe_token: list[str] = typer.Option([], "--probe-token", envvar="NETVIGIL_PROBE_TOKENS",
                                          help="Token of a trusted probe (repeatable; no rate limit)."),
    require_probe_token: bool = typer.Option(False, "--require-probe-token",
                                             help="Accept submissions only from trusted probes."),
    rate: float = typer.Option(50.0, "--rate", help="Measurements/s allowed per untrusted probe address."),
    no_analysis: bool = typer.Option(False, "--no-analysis", help="Collect only; do not run the analysis."),
) -> None:
    """Run the observatory: collector + API + live dashboard.

    Example: netvigil serve --port 8470 --data-dir ./obs
    """
    from netvigil.report.serve import _check_port, run_observatory

    _check_port(host, port)
    if rate <= 0:
        raise UsageError(f"--rate must be positive, got {rate}")
    tokens = [t for item in probe_token for t in item.split(",") if t.strip()]
    typer.echo(f"netvigil observatory on http://{host}:{port}/ (data in {data_dir})", err=True)
    run_observatory(data_dir, host, port, engine=clickhouse_url or "chdb", admin_token=admin_token,
                    probe_tokens=frozenset(tokens), require_probe_token=require_probe_token,
                    rate_per_second=rate, rate_burst=max(rate * 10, 10), analysis=not no_analysis)


def _fetch_incident(url: str, incident_id: str):
    import httpx
    import msgspec

    from netvigil.model.records import AggregateRow, Incident
    from netvigil.report.chart import window

    base = url.rstrip("/")
    try:
        r = httpx.get(f"{base}/api/v1/incidents/{incident_id}", timeout=30)
        if r.status_code == 404:
            raise UsageError(f"incident {incident_id!r} not found at {base}")
        r.raise_for_status()
        inc = msgspec.convert(r.json(), Incident)
        since, until, bucket = window(inc)
        a = httpx.get(f"{base}/api/v1/aggregates", params={"country": inc.country, "service": inc.service,
                                                            "since": since, "until": until, "bucket": bucket},
                      timeout=30)
        a.raise_for_status()
        rows = msgspec.convert(a.json()["results"], list[AggregateRow])
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot read incident from {base}: {exc}") from None
    return inc, rows


def _local_incident(data_dir: Path, incident_id: str):
    from netvigil.report.chart import aggregates_for

    from netvigil.collector.pump import store_dir

    store = store_dir(Path(data_dir))
    if not store.exists():
        raise UsageError(f"no observatory store in {data_dir}", hint="give --data-dir of a `netvigil serve`")
    try:
        from netvigil.analysis.service import Observatory
    except ImportError as exc:
        raise StoreError(f"analysis is not available: {exc}") from None
    try:
        obs = Observatory(store)
    except Exception as exc:
        raise StoreError(f"cannot open the store ({type(exc).__name__}: {exc})", where=str(store),
                         hint="if `netvigil serve` runs on it, use --url http://HOST:PORT") from None
    try:
        inc = obs.incident(incident_id)
        if inc is None:
            known = ", ".join(i.id for i in obs.incidents()[:10]) or "none"
            raise UsageError(f"incident {incident_id!r} not found (known: {known})")
        from netvigil.report.enrich import verdict_query, with_rates

        if inc.kind == "censorship":
            inc = with_rates(inc, obs.verdicts(**verdict_query(inc)))
        return inc, aggregates_for(obs, inc)
    finally:
        obs.close()


def report(
    incident_id: str = typer.Argument(..., help="Incident id (see `netvigil incidents` or the dashboard)."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Observatory data directory."),
    out_dir: Path = typer.Option(Path("."), "--out-dir", help="Where to write text, JSON, SVG and PNG."),
    url: str = typer.Option(None, "--url", help="Read from a running observatory instead of --data-dir."),
) -> None:
    """Write an incident's statement (text), chart (SVG, PNG) and JSON.

    Example: netvigil report RU-twitter-20220226T0900 --data-dir ./obs --out-dir ./out
    """
    import msgspec

    from netvigil.report.chart import incident_chart, render
    from netvigil.report.text import incident_text

    inc, rows = _fetch_incident(url, incident_id) if url else _local_incident(data_dir, incident_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --out-dir: {exc.strerror}", where=str(out_dir)) from None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in inc.id)
    text = incident_text(inc)
    chart = incident_chart(inc, rows)
    files = {f"{safe}.txt": (text + "\n").encode(), f"{safe}.svg": render(chart, "svg"),
             f"{safe}.png": render(chart, "png"),
             f"{safe}.json": msgspec.json.format(msgspec.json.encode({**msgspec.to_builtins(inc), "text": text}))}
    for name, data in files.items():
        (out_dir / name).write_bytes(data)
    typer.echo(text)
    typer.echo("wrote " + ", ".join(str(out_dir / n) for n in files), err=True)


def subscribe(
    url: str = typer.Argument(None, help="Webhook URL that receives signed JSON alerts."),
    secret: str = typer.Option(None, "--secret", help="HMAC-SHA256 key for X-Netvigil-Signature."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, "--data-dir", help="Observatory data directory."),
    event: list[str] = typer.Option([], "--event", help="start, change or end (repeatable; default all)."),
    country: str = typer.Option(None, "--country", help="Only incidents in this country (e.g. RU)."),
    service: str = typer.Option(None, "--service", help="Only incidents of this service (e.g. twitter)."),
    list_: bool = typer.Option(False, "--list", help="List subscriptions instead of adding one."),
    remove: str = typer.Option(None, "--remove", help="Remove the subscription with this id."),
) -> None:
    """Subscribe a webhook to incident start, change and end alerts.

    Example: netvigil subscribe http://127.0.0.1:9000/hook --secret s3cret --data-dir ./obs
    """
    from netvigil.report.alerts import Subscriptions

    subs = Subscriptions(Path(data_dir) / "subscriptions.json")
    if list_:
        for s in subs.all():
            typer.echo(json.dumps({"id": s.id, "url": s.url, "events": s.events, "country": s.country,
                                   "service": s.service, "signed": bool(s.secret)}))
        return
    if remove:
        if not subs.remove(remove):
            raise UsageError(f"no subscription with id {remove!r} (see --list)")
        typer.echo(f"removed {remove}")
        return
    if not url:
        raise UsageError("give a webhook URL (or --list / --remove ID)")
    if country and (len(country) != 2 or not country.isalpha()):
        raise UsageError(f"--country must be a two-letter code like RU, got {country!r}")
    sub = subs.add(url, secret=secret, events=event or None, country=country, service=service)
    typer.echo(f"subscribed {sub.id}: {sub.url} ({', '.join(sub.events)}"
               f"{', signed' if secret else ', unsigned'})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("serve")(serve)
    app.command("report")(report)
    app.command("subscribe")(subscribe)
