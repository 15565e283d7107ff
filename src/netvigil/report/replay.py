"""Recorded lab runs as a live feed: read a run, hand it out round by round.

Tests, benchmarks and offline demos of the observatory need hours of measurements from
several networks with known onsets, ends and techniques. A recorded `netvigil lab run`
(DIR/measurements.jsonl or .jsonl.zst, DIR/labels.jsonl) has exactly that, measured by the
real probe through the real censors; these helpers read it and split it into the probe
rounds a live deployment would receive one after the other.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import zstandard

from netvigil.errors import UsageError
from netvigil.model.measurement import Measurement, decode_measurement


def load_run(run_dir: Path) -> list[Measurement]:
    """The run's measurements sorted by scenario time (measurement_start_time)."""
    run_dir = Path(run_dir)
    plain, packed = run_dir / "measurements.jsonl", run_dir / "measurements.jsonl.zst"
    if plain.exists():
        raw = plain.read_bytes()
    elif packed.exists():
        raw = zstandard.ZstdDecompressor().decompress(packed.read_bytes(), max_output_size=1 << 32)
    else:
        raise UsageError(f"no measurements.jsonl(.zst) in {run_dir}", hint="give a `netvigil lab run --out` dir")
    ms = [decode_measurement(line, where=f"{run_dir}/measurements.jsonl:{i}")
          for i, line in enumerate(raw.splitlines(), 1) if line.strip()]
    return sorted(ms, key=lambda m: m.measurement_start_time)


def rounds(ms: list[Measurement]) -> Iterator[tuple[str, list[Measurement]]]:
    """(scenario time, measurements) per probe round, in time order."""
    for t, group in itertools.groupby(ms, key=lambda m: m.measurement_start_time[:16]):
        yield t, list(group)


def labels(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "labels.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
