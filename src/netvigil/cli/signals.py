"""CLI commands of the signals area: `netvigil outages FILE` (outage detection on real data)."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import typer

from netvigil.errors import UsageError

FORMATS = ("table", "jsonl")


def outages(
    file: Path = typer.Argument(..., help="A Monash IP Observatory CSV, an MRT dump (BGP4MP / TABLE_DUMP[_V2], plain, .gz or .bz2), or measurements (JSONL, e.g. a lab run's measurements.jsonl)."),
    region: list[str] = typer.Option([], "--region", "-r", help="Only regions (or origin ASes) whose name contains this; repeatable."),
    fmt: str = typer.Option("table", "--format", "-f", help="table (human) or jsonl (one outage interval per line)."),
    windows: Path | None = typer.Option(None, "--windows", help="Documented outage windows CSV (start_utc,end_utc[,country][,region]): print precision/recall of region-hour calls."),
    national: bool = typer.Option(True, "--national/--no-national", help="Also detect on the country-level mean of all regions (Monash connectivity files)."),
    changes: bool = typer.Option(True, "--changes/--no-changes", help="MRT: print every prefix visibility change."),
    rules_file: Path | None = typer.Option(None, "--rules", help="Outage rules TOML (default: the shipped rules/outage.toml)."),
    step: int | None = typer.Option(None, "--step", help="Measurements: bucket length in seconds (default: run.json's cadence beside FILE, else 3600)."),
    labels: Path | None = typer.Option(None, "--labels", help="Measurements: lab labels.jsonl to score outage and censorship calls per (network, bucket) (default: labels.jsonl beside FILE, if any)."),
) -> None:
    """Detect outages (onset, end, depth, score) per region or per origin AS in a real data file;
    for measurements, outage or censorship per network, with the spans the incidents show.

    Example: netvigil outages tests/data/third_party/monash-ip-observatory/irn-2019-11-11_gif.csv --windows tests/signals/data/iran_2019_windows.csv

    Example: netvigil outages tests/data/lab/russia-2022/measurements.jsonl.zst
    """
    from netvigil.analysis.rules import load_rules
    from netvigil.ingest.mrt import looks_like_mrt

    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if not file.is_file():
        raise UsageError("no such file", where=str(file))
    rules = load_rules(outage_file=rules_file).outage
    if looks_like_mrt(file):
        _mrt(file, region, fmt, changes, rules)
    elif _looks_like_json(file):
        from netvigil.cli.signals_measurements import run_measurements

        run_measurements(file, fmt, step, labels, rules)
    else:
        _monash(file, region, fmt, windows, national, rules)


def _looks_like_json(path: Path) -> bool:
    """Measurements start with '{' or '[' once decompressed (gzip, bz2 or zstd)."""
    import bz2
    import gzip

    with open(path, "rb") as fh:
        magic = fh.read(4)
    try:
        if magic.startswith(b"\x1f\x8b"):
            with gzip.open(path, "rb") as fh:
                head = fh.read(64)
        elif magic.startswith(b"BZh"):
            with bz2.open(path, "rb") as fh:
                head = fh.read(64)
        elif magic == b"\x28\xb5\x2f\xfd":
            import zstandard

            with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as fh:
                head = fh.read(64)
        else:
            with open(path, "rb") as fh:
                head = fh.read(64)
    except (OSError, EOFError, ValueError):
        return path.suffix in (".json", ".jsonl", ".zst")  # corrupt: let that reader say so
    return head.lstrip()[:1] in (b"{", b"[")


def _select(series, region: list[str]):
    if not region:
        return series
    wanted = [r.lower() for r in region]
    chosen = [s for s in series if any(w in s.key.lower() for w in wanted)]
    if not chosen:
        known = sorted({(s.region or s.key).split("/")[0] for s in series})
        raise UsageError(f"no region matches {', '.join(region)}",
                         hint="known: " + ", ".join(known[:12]) + (" ..." if len(known) > 12 else ""))
    return chosen


def _emit(intervals, fmt: str, title: str) -> None:
    if fmt == "jsonl":
        for iv in intervals:
            sys.stdout.write(msgspec.json.encode(iv).decode() + "\n")
        return
    typer.echo(title)
    if not intervals:
        typer.echo("  no outage detected")
        return
    width = max(len(iv.key) for iv in intervals)
    typer.echo(f"  {'where':<{width}}  {'onset (UTC)':<19}  {'detected (UTC)':<19}  {'end (UTC)':<19}  depth  score")
    for iv in intervals:
        typer.echo(f"  {iv.key:<{width}}  {iv.onset:<19}  {iv.detected:<19}  {(iv.end or 'ongoing'):<19}  "
                   f"{iv.depth:5.0%}  {iv.score:5.2f}")


def _monash(file: Path, region, fmt, windows, national, rules) -> None:
    from netvigil.analysis.outages.detector import detect_outages, national_series
    from netvigil.analysis.outages.scoring import load_windows, score
    from netvigil.ingest.monash import read_monash

    series = read_monash(file)
    chosen = _select(series, region)
    intervals = [iv for s in chosen for iv in detect_outages(s, rules)]
    nat = []
    if national and not region and series[0].signal == "connectivity" and len(series) > 1:
        ns = national_series(series, f"{series[0].country} (national)", rules)
        nat = detect_outages(ns, rules)
        _emit(nat, fmt, f"{ns.key}: {len(series)} regions, {len(ns.times)} hourly buckets "
                        f"[rules {rules.version}]")
    _emit(intervals, fmt, f"per region: {len(chosen)} series of {series[0].signal} from {file.name}")
    if windows is not None:
        wins = load_windows(windows)
        sc = score(chosen, intervals, wins)
        out = sys.stderr if fmt == "jsonl" else sys.stdout
        print(f"region-{_unit(series[0].step)} calls vs {windows.name}: {sc.line()}", file=out)
        if nat:
            nsc = score([ns], nat, wins)
            errs = ", ".join(f"{e:+.0f} min" for e in nsc.onset_errors_min) or "none"
            dets = ", ".join(f"{e:+.0f} min" for e in nsc.detection_delays_min) or "none"
            print(f"national calls vs {windows.name}: {nsc.line()}; onset error {errs}, "
                  f"detected {dets}", file=out)
        elif sc.onset_errors_min:
            e = sorted(sc.onset_errors_min)
            print(f"onset error over {len(e)} window(s): median {e[len(e) // 2]:+.0f} min, "
                  f"worst {max(e, key=abs):+.0f} min", file=out)


def _unit(step: int) -> str:
    return "hour" if step == 3600 else f"{step // 3600}h" if step % 3600 == 0 else f"{step}s"


def _mrt(file: Path, region, fmt, show_changes: bool, rules) -> None:
    from netvigil.analysis.outages.detector import route_visibility_outages
    from netvigil.model.times import utc_text
    from netvigil.ingest.mrt import read_mrt, replay

    dump = read_mrt(file)
    rp = replay(dump)
    chosen = _select(rp.series, region) if region else rp.series
    intervals = [iv for s in chosen for iv in route_visibility_outages(s, rules)]
    if fmt == "table":
        skipped = "".join(f", skipped {n} {k} (not decodable by mrtparse)" for k, n in dump.skipped.items())
        typer.echo(f"{file.name}: {dump.records} MRT records, {len(dump.events)} route events, "
                   f"{len(dump.session_downs)} session downs{skipped}")
        if show_changes:
            for c in rp.changes:
                if region and not any(r.lower() in (c.origin_as or "").lower() for r in region):
                    continue
                typer.echo(f"  {utc_text(c.ts)}  {c.prefix:<22} {c.origin_as or '?':<10} "
                           f"peers {c.peers_before} -> {c.peers_after}  ({c.cause})")
        for s in chosen:
            typer.echo(f"  {s.key}: visible prefixes {' '.join(str(int(v)) for v in s.values[:30])}"
                       + (" ..." if len(s.values) > 30 else ""))
    _emit(intervals, fmt, "route visibility outages (per origin AS):")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("outages")(outages)
