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


def run_cli(*args: str | os.PathLike) -> CliResult:
    """`netvigil *args` in this process; a bug raises here instead of printing a traceback."""
    from netvigil.cli import main

    out, err = _Stream(), _Stream()
    debug = os.environ.pop("NETVIGIL_DEBUG", None)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # what the entry point's sys.exit would make of it
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        if debug is not None:
            os.environ["NETVIGIL_DEBUG"] = debug
    return CliResult(code, out.text(), err.text())
