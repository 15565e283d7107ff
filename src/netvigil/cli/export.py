"""`netvigil export`: verdicts, aggregates, incidents or status of a store as Parquet, CSV or JSONL.

The same rows, filters and paging as the API's lists (`format=parquet|csv|json`), written by
report/export.py, so a file from the CLI and a download from the API agree.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer

from netvigil.errors import UsageError

KIND_NAMES = ("verdicts", "aggregates", "incidents", "status")
FILE_FORMATS = ("parquet", "csv", "jsonl")


def _check(kind: str, fmt: str) -> None:
    if kind not in KIND_NAMES:
        raise UsageError(f"unknown list {kind!r}", hint="use verdicts, aggregates, incidents or status")
    if fmt not in FILE_FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint="use parquet, csv or jsonl")


def _filters(country, asn, service, since, until, bucket, path=None) -> dict:
    """The API's checks on the filters (same words), before the store is opened."""
    from netvigil.errors import Rejected
    from netvigil.model.times import bucket_seconds
    from netvigil.report.api import norm_asn, norm_cc, norm_path, norm_service, norm_time

    try:
        f = {"country": norm_cc(country), "asn": norm_asn(asn), "service": norm_service(service),
             "since": norm_time(since, "since"), "until": norm_time(until, "until"), "path": norm_path(path)}
    except Rejected as exc:
        raise UsageError(str(exc).replace("query parameter ", "option --").replace("--'", "--").replace("' is", " is")) from None
    bucket_seconds(bucket)
    return f


def _rows(obs, kind: str, f: dict, *, bucket, ongoing, limit, offset) -> list[dict]:
    import msgspec

    if kind == "verdicts":
        recs = obs.verdicts(**f, limit=limit, offset=offset)  # the API's default: the direct path
        return [msgspec.to_builtins(r) for r in recs]
    f = {k: v for k, v in f.items() if k != "path"}  # the other lists are direct-path already
    if kind == "aggregates":
        recs = obs.aggregates(**f, bucket=bucket)
    elif kind == "status":
        recs = obs.status(country=f["country"], asn=f["asn"], service=f["service"])
    else:
        recs = obs.incidents(country=f["country"], service=f["service"], ongoing=True if ongoing else None)
    recs = recs[offset:] if limit is None else recs[offset:offset + limit]
    if kind == "incidents":  # as the API publishes them: measured rates, dated statement
        from netvigil.report.api import told_rows
        from netvigil.report.enrich import StoreReader

        return asyncio.run(told_rows(StoreReader(obs), recs))
    return [msgspec.to_builtins(r) for r in recs]




def export(
    kind: str = typer.Argument(..., help="What to export: verdicts, aggregates, incidents or status."),
    store: Path = typer.Option(..., "--store", help="Observatory store directory: DIR of 'netvigil analyse FILES --store DIR', "
                               "DEMO/observatory of 'netvigil demo --out DEMO', DATA_DIR/store of 'netvigil serve "
                               "--data-dir DATA_DIR' (its DATA_DIR is taken too)."),
    fmt: str = typer.Option("parquet", "--format", "-f", help="parquet (typed columns), csv or jsonl."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write (replaced atomically)."),
    country: str = typer.Option(None, "--country", help="Only this country (two-letter code)."),
    asn: str = typer.Option(None, "--asn", help="Only this network, e.g. AS12389 (verdicts, aggregates)."),
    service: str = typer.Option(None, "--service", help="Only this service, e.g. twitter."),
    since: str = typer.Option(None, "--since", help="From this UTC time, 'YYYY-MM-DD[ HH:MM[:SS]]' (verdicts, aggregates)."),
    until: str = typer.Option(None, "--until", help="Before this UTC time (verdicts, aggregates)."),
    path: str = typer.Option(None, "--path", help="Verdicts of this measurement path: direct (default, as the API), vpn, proxy or any."),
    bucket: str = typer.Option("1h", "--bucket", help="Aggregate bucket: e.g. 10m, 1h, 1d."),
    ongoing: bool = typer.Option(False, "--ongoing", help="Only incidents still in progress."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many rows (default: all)."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many rows first (paging)."),
    clickhouse_url: str = typer.Option(None, "--clickhouse-url", help="The store's tables are on this ClickHouse server."),
) -> None:
    """Export a store's verdicts, aggregates, incidents or status as Parquet, CSV or JSONL.

    Example: netvigil export verdicts --store ./observatory --format parquet --out verdicts.parquet --country RU
    """
    _check(kind, fmt)
    f = _filters(country, asn, service, since, until, bucket, path)
    if path and kind != "verdicts":
        raise UsageError("--path filters verdicts only (aggregates, incidents and status are of the direct path)")
    if kind == "incidents" and (f["asn"] or f["since"] or f["until"]):
        raise UsageError("incidents are filtered by --country, --service and --ongoing only")
    if kind == "status" and (f["since"] or f["until"]):
        raise UsageError("status is the latest state: it takes --country, --asn and --service only")
    from netvigil.cli.analysis import existing_store
    from netvigil.observatory.analyser import store_dir

    if (store_dir(store) / "raw").is_dir():
        store = store_dir(store)  # a `netvigil serve` DATA_DIR: its DATA_DIR/store
    existing_store(store)
    from netvigil.analysis.analysed_store import AnalysedStore
    from netvigil.report.export import render

    with AnalysedStore(store, engine=clickhouse_url or "chdb") as obs:
        rows = _rows(obs, kind, f, bucket=bucket, ongoing=ongoing, limit=limit, offset=offset)
    data = render(kind, rows, fmt)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        raise UsageError(f"cannot write: {exc.strerror}", where=str(out)) from None
    typer.echo(f"{len(rows)} {kind} row(s) written to {out} ({fmt}, {len(data)} bytes)", err=True)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
