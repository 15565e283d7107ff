"""Rich progress for `netvigil lab run` and `netvigil demo` (on stderr)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from netvigil.lab.runner import RunSummary, run_scenario
from netvigil.lab.scenario import Scenario


def run_with_progress(scenario: Scenario, out: Path, *, quiet: bool = False, **kw) -> RunSummary:
    console = Console(stderr=True, highlight=False)
    if quiet:
        return run_scenario(scenario, out, **kw)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[now]}"), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        task = progress.add_task(f"lab {scenario.name}", total=None, now="building the lab")

        def log(msg: str) -> None:
            progress.console.print(f"  {msg}", markup=False)

        def on_round(r: int, total: int, when: str, in_force: dict) -> None:
            active = sum(1 for v in in_force.values() if v)
            progress.update(task, total=total, completed=r + 1,
                            now=f"{when}  {active}/{len(in_force)} ISPs censoring")

        return run_scenario(scenario, out, log=log, on_round=on_round, **kw)
