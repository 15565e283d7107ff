"""`netvigil quarantine`: list the measurements the analysis set aside (collector/quarantine.py).

Reads DATA_DIR/collector/quarantine.jsonl and, with --lines, each line from the collector's
log; works while `netvigil serve` runs on the same directory (nothing is opened for writing).
"""

from __future__ import annotations

from pathlib import Path

import typer

from netvigil.errors import UsageError


def quarantine(
    data_dir: Path = typer.Option(..., "--data-dir", help="The service's data directory (netvigil serve --data-dir)."),
    lines: bool = typer.Option(False, "--lines", help="Print each measurement's line as received, after its entry."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many entries, newest first."),
    as_jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per entry instead of text."),
) -> None:
    """List the measurements the analysis could not decode, judge or store, newest first.

    Example: netvigil quarantine --data-dir netvigil-data --lines --limit 5
    """
    import msgspec

    from netvigil.collector.quarantine import Quarantine, as_dict, read_line

    if not (data_dir / "log").is_dir():
        raise UsageError(f"{data_dir} is not a netvigil data directory (it has no log/)",
                         hint="give the directory 'netvigil serve --data-dir' uses")
    entries = Quarantine(data_dir).entries()
    if not entries:
        typer.echo("nothing set aside")
        return
    for e in entries[::-1][:limit]:
        line = None
        if lines and e.position.length:
            try:
                line = read_line(data_dir, e.position).decode("utf-8", "replace")
            except OSError as exc:
                line = f"(cannot read the log: {exc.strerror or exc})"
        if as_jsonl:
            item = as_dict(e)
            if line is not None:
                item["measurement"] = line
            typer.echo(msgspec.json.encode(item).decode())
        else:
            where = f"log segment {e.position.segment} offset {e.position.offset}"
            typer.echo(f"{e.at}  {e.stage:6}  {e.uid or '(no uid)'}  {where}\n    {e.reason}")
            if line is not None:
                typer.echo(f"    {line}")
    if len(entries) > limit:
        typer.echo(f"({len(entries) - limit} older entries not shown; --limit)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("quarantine")(quarantine)
