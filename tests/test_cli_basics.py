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
