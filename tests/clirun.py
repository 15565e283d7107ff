"""Run `netvigil ARGS` inside the test process.

The installed entry point is `netvigil.cli:main(argv)`, so calling it here runs the same
parsing, commands and one-line error handling as a subprocess, without paying a fresh
interpreter and every import (about a second of CPU) per call. One subprocess test per
command family still proves the entry point and its exit status (see docs/testing.md).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class CliResult:
    """What a user sees: the exit status and both streams (same names as CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


class _Stream(io.TextIOWrapper):
    """A text stream with a `.buffer`, as sys.stdout has (`probe --out -` writes bytes)."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", newline="", write_through=True)

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        self.flush()
        return self.buffer.getvalue().decode("utf-8", errors="replace")


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """os.environ with NETVIGIL_DEBUG unset and `env` set, restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("NETVIGIL_DEBUG", *env)}
    os.environ.pop("NETVIGIL_DEBUG", None)
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _signal_handlers():
    """SIGTERM and SIGINT handlers as they were: a command that installs its own (`agent` ends
    its loop on SIGTERM) must not leave it in the test process after it returned."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            if handler is not None:  # None: set outside Python, nothing to put back
                signal.signal(s, handler)


def run_cli(*args: str | os.PathLike, env: dict[str, str] | None = None) -> CliResult:
    """`netvigil *args` in this process, with `env` added to the environment for the call;
    a bug raises here instead of printing a traceback."""
    from netvigil.cli import main

    out, err = _Stream(), _Stream()
    with _environment(env or {}), _signal_handlers(), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # what the entry point's sys.exit would make of it
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.text(), err.text())
