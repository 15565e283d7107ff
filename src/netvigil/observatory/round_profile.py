"""A profile of the analysis rounds, slice by slice, for finding what grows over a long run.

Off by default. With NETVIGIL_PROFILE_ANALYSIS=DIR the analysis process (pump_process.py)
runs its rounds under cProfile and, every NETVIGIL_PROFILE_SLICE seconds (default 60), writes
DIR/rounds-NNN.prof (the rounds of that slice only) and appends one line to DIR/slices.tsv:
slice, wall seconds, rounds, measurements analysed, CPU seconds in rounds, CPU us per
measurement. Read a slice with `python -m pstats DIR/rounds-NNN.prof`.

Why slices: the cost per measurement that grows with the store (issue #13) shows as one
function's share rising from slice to slice, which a single whole-run profile averages away.
"""

from __future__ import annotations

import cProfile
import os
import time
from pathlib import Path

from netvigil.errors import ConfigError


class RoundProfile:
    """Profiles the analysis rounds slice by slice (module docstring); off unless asked for."""

    def __init__(self, out_dir: Path, slice_seconds: float = 60.0):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.slice_seconds = slice_seconds
        self.n = 0
        self._start_slice()
        with open(self.dir / "slices.tsv", "w") as fh:
            fh.write("slice\twall_s\trounds\tanalysed\tcpu_s\tcpu_us_per_measurement\n")

    def _start_slice(self) -> None:
        self.prof = cProfile.Profile()
        self.t0 = time.monotonic()
        self.rounds = self.analysed = 0
        self.cpu = 0.0

    def run(self, fn, *args):
        """fn(*args) profiled; its `analysed` counted when it has one."""
        c0 = time.process_time()
        self.prof.enable()
        try:
            res = fn(*args)
        finally:
            self.prof.disable()
            self.cpu += time.process_time() - c0
            self.rounds += 1
        self.analysed += int(getattr(res, "analysed", 0) or 0)
        if time.monotonic() - self.t0 >= self.slice_seconds:
            self.dump()
        return res

    def dump(self) -> None:
        """Write this slice (if it ran a round) and start the next."""
        if self.rounds:
            self.prof.dump_stats(str(self.dir / f"rounds-{self.n:03d}.prof"))
            per = self.cpu / self.analysed * 1e6 if self.analysed else 0.0
            with open(self.dir / "slices.tsv", "a") as fh:
                fh.write(f"{self.n}\t{time.monotonic() - self.t0:.1f}\t{self.rounds}\t{self.analysed}\t"
                         f"{self.cpu:.6f}\t{per:.1f}\n")
            self.n += 1
        self._start_slice()


def from_env() -> RoundProfile | None:
    """The profile asked for by NETVIGIL_PROFILE_ANALYSIS (None: off, the default)."""
    out = os.environ.get("NETVIGIL_PROFILE_ANALYSIS", "").strip()
    if not out:
        return None
    raw = os.environ.get("NETVIGIL_PROFILE_SLICE", "").strip() or "60"
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ConfigError(f"must be a positive number of seconds, not {raw[:40]!r}", where="NETVIGIL_PROFILE_SLICE")
    return RoundProfile(Path(out), seconds)
