"""The CLI's contract with a user: help, version, one-line errors."""

import subprocess
import sys
from pathlib import Path

from tests.clirun import run_cli

ENTRY_POINT = Path(sys.executable).parent / "netvigil"


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("netvigil ")


def test_unknown_command_is_one_line_error():
    r = run_cli("no-such-command")
    assert r.returncode == 2
    assert "No such command" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_main_many_times_in_one_process_registers_each_command_once():
    import netvigil.cli as cli

    run_cli("--version")
    names = [c.name or c.callback.__name__ for c in cli.app.registered_commands]
    groups = len(cli.app.registered_groups)
    assert run_cli("analyse", "--help").returncode == 0 and run_cli("--version").returncode == 0
    assert [c.name or c.callback.__name__ for c in cli.app.registered_commands] == names
    assert len(cli.app.registered_groups) == groups and len(names) == len(set(names))


def test_installed_entry_point_and_module_exit_with_mains_status():
    """The one place the interpreter is started: the console script and `python -m netvigil`
    turn main()'s return value into the process's exit status, with no traceback."""
    version = subprocess.run([str(ENTRY_POINT), "--version"], capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("netvigil ")
    r = subprocess.run([sys.executable, "-m", "netvigil", "no-such-command"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert "No such command" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
