"""The `netvigil` command line.

Each area registers its own commands from its own module (probe.py, lab.py, analysis.py,
observatory.py), so the CLI reads like the data flow. Errors a user can cause print one
line and exit non-zero; tracebacks are only for bugs (NETVIGIL_DEBUG=1 shows them).
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from rich.console import Console

from netvigil.errors import NetvigilError

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc

app = typer.Typer(
    name="netvigil",
    help="An observatory of internet censorship and outages, with a censorship lab.\n\n"
    "Example: netvigil demo",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# One module per area; each defines register(app).
AREAS = ("probe", "lab", "analysis", "observatory", "signals", "export", "helper", "quarantine", "agent", "geo")


_registered = False


def _register() -> None:
    """Once per process: main() may run many times in one (tests call it in-process), and
    each register(app) appends its commands again."""
    global _registered
    if _registered:
        return
    for area in AREAS:
        module = importlib.import_module(f"netvigil.cli.{area}")
        module.register(app)
    _registered = True


def _print_version(value: bool) -> None:
    if value:
        from netvigil import __version__

        typer.echo(f"netvigil {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
    ),
) -> None:
    """An observatory of internet censorship and outages, with a censorship lab."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error and return an Exit to raise."""
    err_console.print(f"[bold red]netvigil: error:[/] {message}", markup=True)
    return typer.Exit(code)


def main(argv: list[str] | None = None) -> int:
    _register()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="netvigil", standalone_mode=False)
    except click_exc.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        err_console.print(f"netvigil: error: {exc.format_message()}{hint}", markup=False)
        return 2
    except getattr(click_exc, "Exit", typer.Exit) as exc:  # typer 0.29 moved Exit/Abort
        return exc.exit_code
    except getattr(click_exc, "Abort", typer.Abort):
        err_console.print("netvigil: interrupted", markup=False)
        return 130
    except KeyboardInterrupt:
        err_console.print("netvigil: interrupted", markup=False)
        return 130
    except NetvigilError as exc:
        if os.environ.get("NETVIGIL_DEBUG"):
            raise
        err_console.print(f"netvigil: error: {exc}", markup=False)
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
