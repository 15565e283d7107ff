"""CLI commands of the lab area: `lab list|validate|run|clean` and `demo`."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

lab_app = typer.Typer(help="The censorship lab: emulated ISPs, services and censors in network namespaces.\n\n"
                      "Example: netvigil lab run russia-2022 --out runs/ru", no_args_is_help=True)


def _sigterm_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so the lab's teardown runs."""
    def handler(_sig, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


@lab_app.command("list")
def list_cmd() -> None:
    """List the packaged scenarios, one line each.

    Example: netvigil lab list
    """
    from netvigil.lab.scenario import list_scenarios, load_scenario

    for path in list_scenarios():
        s = load_scenario(path)
        typer.echo(f"{s.name:18} {len(s.isps):2} ISP  {s.rounds:3} rounds  {s.description}")


@lab_app.command("validate")
def validate_cmd(scenarios: list[str] = typer.Argument(..., help="Scenario names or TOML files.")) -> None:
    """Check scenario files; errors name the file, line and key.

    Example: netvigil lab validate russia-2022 my-scenario.toml
    """
    from netvigil.lab.labels import build_labels
    from netvigil.lab.scenario import load_scenario

    for name in scenarios:
        s = load_scenario(name)
        typer.echo(f"ok: {s.name}: {len(s.isps)} ISPs, {s.rounds} rounds, {len(build_labels(s))} label lines")


@lab_app.command("run")
def run_cmd(
    scenario: str = typer.Argument(..., help="Scenario name (see 'netvigil lab list') or TOML file."),
    out: Path = typer.Option(..., "--out", help="Run directory: measurements.jsonl, labels.jsonl, run.json."),
    rounds: int = typer.Option(None, "--rounds", min=1, help="Run only the first N rounds."),
    speed: float = typer.Option(0.0, "--speed", min=0.0,
                                help="Scenario seconds per wall second (0: rounds back to back)."),
    timeout: float = typer.Option(3.0, "--timeout", min=0.5, help="Agent (probe) per-step timeout, seconds."),
    parallel: int = typer.Option(4, "--parallel", min=1, help="Agents running at once."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
) -> None:
    """Build the lab, run a scenario's rounds with an agent in every ISP, tear down.

    An observatory (netvigil serve) runs on the lab's uncensored transit; in
    every ISP, VPN subscriber and the control network, netvigil agent enrols
    with it (invite token), checks in, locates itself, measures and submits,
    once per round. measurements.jsonl is what the observatory acknowledged.
    Nothing keeps running after the run ends or fails.

    Example: netvigil lab run russia-2022 --out runs/ru --rounds 4
    """
    from netvigil.lab.progress import run_with_progress
    from netvigil.lab.scenario import load_scenario

    s = load_scenario(scenario)
    _sigterm_as_interrupt()
    summary = run_with_progress(s, out, rounds=rounds, speed=speed, timeout=timeout, parallel=parallel,
                                quiet=quiet)
    typer.echo(f"{summary.scenario}: {summary.rounds} rounds, {summary.measurements} measurements, "
               f"{summary.labels} labels, {summary.agents} agents, {summary.probe_failures} agent failures, "
               f"{summary.left_queued} left queued, set-up "
               f"{summary.setup_seconds:.1f} s, total {summary.wall_seconds:.0f} s -> {summary.out_dir}")


@lab_app.command("clean")
def clean_cmd(quiet: bool = typer.Option(False, "--quiet", help="Print nothing."),
              all_runs: bool = typer.Option(False, "--all", help="Also runs whose process is still alive.")) -> None:
    """Remove the lab namespaces (and their veths, rules, processes) left by crashed runs.

    A run whose process is alive is left alone unless --all is given.

    Example: netvigil lab clean
    """
    from netvigil.lab.cleanup import clean_all, lab_namespaces
    from netvigil.lab.runner import check_prerequisites

    check_prerequisites()
    removed = clean_all(force=all_runs)
    left = lab_namespaces() if all_runs else []
    if not quiet:
        typer.echo(f"removed {len(removed)} lab namespaces" + (f"; could not remove {left}" if left else ""))
    if left:
        raise typer.Exit(1)


def demo_cmd(
    out: Path = typer.Option(Path("netvigil-demo"), "--out", help="Directory for the run and the observatory."),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the dashboard until Ctrl-C."),
    port: int = typer.Option(8470, "--port", help="Dashboard port (127.0.0.1)."),
    rounds: int = typer.Option(None, "--rounds", min=1, help="Run only the first N rounds."),
    replay: bool = typer.Option(False, "--replay", help="Replay the bundled recorded run, even as root."),
) -> None:
    """Run the russia-2022 scenario in the lab, analyse it and show what the observatory found.

    Without root and network namespaces it says so and replays a recorded run of the same lab.

    Example: netvigil demo --no-serve
    """
    from netvigil.lab.demo import run_demo

    _sigterm_as_interrupt()
    run_demo(out, serve=serve, port=port, rounds=rounds, replay=replay)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(lab_app, name="lab")
    app.command("demo")(demo_cmd)
