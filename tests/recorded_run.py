"""The measurements of a recorded lab run, decoded once per test process.

Decoding russia-2022 (384 measurements, 16 MB of JSON) costs about 0.3 s of CPU, and several
test modules of one run read it. Each call returns its own shallow copies: adding a
measurement to a store sets its envelope's uid and nothing else of it is written to, so one
module's uids stay out of another's; the trees inside are shared and are only read.
"""

from __future__ import annotations

import functools
from pathlib import Path

import msgspec


@functools.cache
def _decoded(run: Path) -> tuple:
    from netvigil.report.replay import load_run

    return tuple(load_run(run))


def run_measurements(run: str | Path) -> list:
    """load_run(run): the run's measurements sorted by scenario time, fresh envelopes."""
    return [msgspec.structs.replace(m) for m in _decoded(Path(run).resolve())]
