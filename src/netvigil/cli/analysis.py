"""CLI commands of the analysis area: analyse, incidents, evaluate, rebuild.

Imports of the analysis engine are inside the commands so `netvigil --help` stays quick.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from netvigil.errors import UsageError

FORMATS = ("table", "jsonl")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint="use table or jsonl")


def _out(path: str | None):
    if path in (None, "-"):
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write: {exc.strerror}", where=path) from None


def _emit_jsonl(records, out) -> int:
    import msgspec

    enc = msgspec.json.Encoder()
    n = 0
    for r in records:
        out.write(enc.encode(r).decode() + "\n")
        n += 1
    out.flush()
    return n


def _verdict_table(verdicts) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table("time", "cc", "asn", "service", "input/domain", "class", "technique", "conf", "rate", "path",
                  box=None, header_style="bold")
    n = 0
    for v in verdicts:
        rate = f"{v.rate_bps / 1000:.0f}k" if v.rate_bps else ""
        table.add_row(v.measurement_start_time, v.probe_cc, v.probe_asn, v.service or "", (v.domain or v.input or "")[:40],
                      v.klass, v.technique or "", f"{v.confidence:.2f}", rate, v.path)
        n += 1
    Console(highlight=False, width=200).print(table)
    return n


def existing_store(store: Path) -> None:
    """Refuse a --store that holds no store, before a new empty one is made there."""
    if not (store / "raw").is_dir():
        raise UsageError("no observatory store here (expected DIR/raw/)", where=str(store),
                         hint="create one with 'netvigil analyse FILES --store DIR'")


def _summary(report) -> None:
    typer.echo(report.summary(), err=True)
    for e in report.errors:
        typer.echo(f"  skipped {e}", err=True)


def analyse(
    files: list[Path] = typer.Argument(None, help="Measurement files (JSON, JSONL, .gz, .zst) or directories."),
    store: Path = typer.Option(None, "--store", help="Observatory data directory: read its verdicts (with FILES: import them first)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or jsonl (one verdict per line, docs/design.md section 3)."),
    out: str = typer.Option("-", "--out", "-o", help="Output file ('-' for stdout)."),
    country: str = typer.Option(None, "--country", help="Only this country (with --store)."),
    limit: int = typer.Option(1000, "--limit", help="At most this many verdicts (with --store)."),
) -> None:
    """Turn measurements into verdicts (class, technique, confidence, rule ids, rules version).

    Example: netvigil analyse measurements.jsonl --format jsonl
    """
    _check_format(fmt)
    from netvigil.analysis.verdicts.engine import verdicts
    from netvigil.ingest.ooni import IngestReport, read_measurements

    if not files and store is None:
        raise UsageError("give measurement FILES or --store DIR", hint="see 'netvigil analyse --help'")
    report = IngestReport()
    if store is not None:
        from netvigil.analysis.analysed_store import AnalysedStore

        if not files:
            existing_store(store)
        with AnalysedStore(store) as obs:
            if files:
                batch, added = [], 0
                for m in read_measurements(files, report):
                    batch.append(m)
                    if len(batch) >= 2000:
                        added += obs.add(batch)
                        batch = []
                added += obs.add(batch)
                obs.refresh()
                _summary(report)
                typer.echo(f"{added} new measurement(s) stored in {store}", err=True)
            items = obs.verdicts(country=country, limit=limit)
    else:
        items = verdicts(read_measurements(files, report))
    fh = _out(out)
    n = _emit_jsonl(items, fh) if fmt == "jsonl" else _verdict_table(items)
    if store is None:
        _summary(report)
    typer.echo(f"{n} verdict(s)", err=True)


def incidents(
    files: list[Path] = typer.Argument(None, help="Measurement files or directories."),
    store: Path = typer.Option(None, "--store", help="Observatory data directory to read incidents from."),
    fmt: str = typer.Option("table", "--format", "-f", help="table or jsonl (one incident per line)."),
    out: str = typer.Option("-", "--out", "-o", help="Output file ('-' for stdout)."),
    country: str = typer.Option(None, "--country", help="Only this country."),
    ongoing: bool = typer.Option(False, "--ongoing", help="Only incidents still in progress."),
) -> None:
    """One incident per (country, service) event: networks, techniques, onset/end, circumvention.

    Example: netvigil incidents measurements.jsonl --format jsonl
    """
    _check_format(fmt)
    if not files and store is None:
        raise UsageError("give measurement FILES or --store DIR", hint="see 'netvigil incidents --help'")
    from netvigil.analysis.incidents.builder import build_incidents
    from netvigil.analysis.rules import load_rules
    from netvigil.analysis.verdicts.engine import verdicts
    from netvigil.ingest.ooni import IngestReport, read_measurements

    if store is not None:
        from netvigil.analysis.analysed_store import AnalysedStore

        existing_store(store)
        with AnalysedStore(store) as obs:
            obs.refresh()
            items = obs.incidents(country=country, ongoing=True if ongoing else None)
    else:
        rules = load_rules()
        report = IngestReport()
        items = build_incidents(verdicts(read_measurements(files, report), rules), rules.incidents, rules.version)
        _summary(report)
        items = [i for i in items if (not country or i.country == country) and (not ongoing or i.end is None)]
    fh = _out(out)
    if fmt == "jsonl":
        _emit_jsonl(items, fh)
    else:
        for i in items:
            nets = ", ".join(f"{n.asn} {n.technique} {n.start[11:16]}-{(n.end or '...')[11:16]}" for n in i.networks)
            fh.write(f"{i.id} {i.country} {i.service} {i.kind} {i.start} -> {i.end or 'ongoing'} "
                     f"circumvention={i.circumvention} [{nets}]\n")
    typer.echo(f"{len(items)} incident(s)", err=True)


def evaluate(
    ooni_qa: Path = typer.Option(None, "--ooni-qa", help="OONI QA scenarios directory (<scenario>/measurement.json)."),
    lab: Path = typer.Option(None, "--lab", help="A lab run directory (measurements.jsonl, labels.jsonl, run.json)."),
    ooni_observations: Path = typer.Option(None, "--ooni-observations", help="OONI observation CSV (.csv or .csv.gz)."),
    windows: Path = typer.Option(None, "--windows", help="Windows CSV: start_utc,end_utc[,probe_asn]."),
    ooni_fastpath: Path = typer.Option(None, "--ooni-fastpath", help="OONI fastpath table CSV or measurement_meta JSONL (.gz), or a directory of them: agreement with OONI's anomaly/confirmed flags."),
    acsac: Path = typer.Option(None, "--acsac", help="ACSAC 2024 censorship-event-detection data directory (ooni/, censoredplanet/): Russia 2022 onsets."),
    ooni_im: list[Path] = typer.Option(None, "--ooni-im", help="OONI telegram/whatsapp measurement files or directories (repeat the option): judged against im_expected.toml."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """Score verdicts against labelled sets and print precision, recall, F1 and confusion.

    Example: netvigil evaluate --ooni-observations 2023-KE-telegram.csv.gz --windows windows.csv

    Independent data: --ooni-fastpath fastpath_sample.csv, --acsac acsac-censorship-event-detection/,
    --ooni-im whatsapp.json --ooni-im measurement_meta.jsonl.gz (docs/evaluation.md).
    """
    import msgspec

    chosen = [x for x in (ooni_qa, lab, ooni_observations, ooni_fastpath, acsac, ooni_im or None) if x is not None]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --ooni-qa DIR, --lab DIR, --ooni-observations FILE, "
                         "--ooni-fastpath PATH, --acsac DIR, --ooni-im PATH")
    if fmt not in ("text", "json"):
        raise UsageError(f"unknown format {fmt!r}", hint="use text or json")
    if ooni_fastpath is not None or acsac is not None or ooni_im:
        res = _independent(ooni_fastpath, acsac, ooni_im)
        typer.echo(msgspec.json.encode(res.as_dict()).decode() if fmt == "json" else "\n".join(res.lines()))
    elif ooni_qa is not None:
        from netvigil.evaluate.qa import evaluate_qa, to_json

        res = evaluate_qa(ooni_qa)
        typer.echo(to_json(res).decode() if fmt == "json" else "\n".join(res.lines()))
    elif lab is not None:
        from netvigil.evaluate.lab import evaluate_lab

        res = evaluate_lab(lab)
        if fmt == "json":
            typer.echo(msgspec.json.encode({"confusion": [[e, p, n] for (e, p), n in res.confusion.pairs.items()],
                                            "onsets": res.onsets, "rates": res.rates, "incidents": res.incidents,
                                            "throttle_fpr": res.throttle_fp.fpr, "vpn": res.vpn.as_dict(),
                                            "outage": res.outage.as_dict(), "circumvention": res.circumvention,
                                            "events": res.events}).decode())
        else:
            typer.echo("\n".join(res.lines()))
    else:
        if windows is None:
            raise UsageError("--ooni-observations needs --windows WINDOWS.csv")
        from netvigil.evaluate.windows import evaluate_windows

        res = evaluate_windows(ooni_observations, windows)
        if fmt == "json":
            typer.echo(msgspec.json.encode({"score": res.score.as_dict(), "per_network": res.per_network, "units": res.units,
                                            "incidents": res.incidents, "incidents_outside_days": res.incidents_outside_days,
                                            "by_network": {k: b.as_dict() for k, b in res.by_network.items()}}).decode())
        else:
            typer.echo("\n".join(res.lines()))


def _independent(ooni_fastpath: Path | None, acsac: Path | None, ooni_im: list[Path] | None):
    """The evaluations on independent data (each result has lines() and as_dict())."""
    if ooni_fastpath is not None:
        from netvigil.evaluate.fastpath import evaluate_fastpath

        return evaluate_fastpath(ooni_fastpath)
    if acsac is not None:
        from netvigil.evaluate.acsac import evaluate_acsac

        return evaluate_acsac(acsac)
    from netvigil.evaluate.im import evaluate_im

    return evaluate_im(list(ooni_im or []))


def rebuild(
    store: Path = typer.Option(..., "--store", help="Observatory data directory."),
) -> None:
    """Recreate every table of a store from its raw archive (zstd JSONL by day), with the current rules.

    Example: netvigil rebuild --store ./observatory
    """
    existing_store(store)
    from netvigil.analysis.analysed_store import AnalysedStore

    with AnalysedStore(store) as obs:
        n = obs.rebuild()
        typer.echo(f"rebuilt {store}: {n} measurement(s), {len(obs.incidents())} incident(s), rules {obs.rules.version}")
        if obs.rebuild_skipped:
            typer.echo(f"{obs.rebuild_skipped} archived measurement(s) could not be judged or stored and were "
                       "set aside (see the log for each reason)", err=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("analyse")(analyse)
    app.command("incidents")(incidents)
    app.command("evaluate")(evaluate)
    app.command("rebuild")(rebuild)
