"""The store owner: feeds committed log lines to the Observatory, one round at a time.

Used on one thread of the service (thread mode) or inside the analysis process (process
mode, pump_process.py): either way a single owner, as chdb requires. A round reads the
committed lines after the checkpoint (DATA_DIR/collector/analysed.json), `add()`s them,
`refresh()`es (throttled under load), reloads the status of the countries that changed,
and only then moves the checkpoint. After a crash it re-adds from the old checkpoint:
`add()` is idempotent by measurement_uid, so nothing is lost or doubled.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import msgspec

from netvigil.collector import log as mlog
from netvigil.errors import MeasurementError
from netvigil.model.measurement import decode_known_fields
from netvigil.model.records import IncidentChange, StatusRow

log = logging.getLogger("netvigil.analyser")


def store_dir(data_dir: Path) -> Path:
    """Where the Observatory's store is: DATA_DIR/store, or DATA_DIR itself when an
    Observatory was opened on it directly (`netvigil demo`, `analyse`), so `netvigil serve`
    shows what those wrote."""
    data_dir = Path(data_dir)
    if not (data_dir / "store").exists() and ((data_dir / "chdb").exists() or (data_dir / "raw").exists()):
        return data_dir
    return data_dir / "store"


class RoundResult(msgspec.Struct):
    analysed: int
    changes: list[IncidentChange]
    # country -> its status rows after the round; `full` when it is the whole status
    status: dict[str, list[StatusRow]]
    full: bool = False
    stale: bool = False  # added data whose incidents are not refreshed yet


class Analyser:
    def __init__(self, data_dir: Path, *, engine: str = "chdb", interval: float = 1.0, batch: int = 1000):
        self.data_dir = Path(data_dir)
        self.log_dir = self.data_dir / "log"
        self.engine, self.interval, self.batch = engine, interval, batch
        self.ckpt_path = self.data_dir / "collector" / "analysed.json"
        self.checkpoint = self._load_checkpoint()
        self.obs: Any = None
        self.rounds = 0
        self.refresh_seconds = 0.0
        self._refreshed_at = 0.0
        self.stale = False

    def open(self) -> None:
        from netvigil.analysis.service import Observatory  # the analysis area's facade

        self.obs = Observatory(store_dir(self.data_dir), engine=self.engine)

    def close(self) -> None:
        if self.obs is not None:
            self.obs.close()
            self.obs = None

    def call(self, name: str, kwargs: dict) -> Any:
        return getattr(self.obs, name)(**kwargs)

    def _load_checkpoint(self) -> tuple[int, int]:
        try:
            data = json.loads(self.ckpt_path.read_text())
            return (int(data["segment"]), int(data["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return (0, 0)

    def _save_checkpoint(self) -> None:
        self.ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.ckpt_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"segment": self.checkpoint[0], "offset": self.checkpoint[1]}))
        os.replace(tmp, self.ckpt_path)

    def pending(self, stop: tuple[int, int]) -> bool:
        return stop > self.checkpoint or self.stale or self.rounds == 0

    def round(self, stop: tuple[int, int]) -> RoundResult:
        """One round over the log up to `stop`, the writer's committed end."""
        end = self.checkpoint
        countries: set[str] = set()
        read = 0

        def decoded():  # lazily: add_lines judges each measurement as it is decoded
            nonlocal end, read
            for pos, line in mlog.scan(self.log_dir, self.checkpoint, stop, limit=self.batch):
                end = (pos.segment, pos.offset + pos.length + 1)
                try:
                    m = decode_known_fields(line, where=f"log segment {pos.segment} offset {pos.offset}")
                except MeasurementError as exc:  # the collector validated it; never block the pump
                    log.error("%s", exc)
                    continue
                countries.add(m.probe_cc)
                read += 1
                yield m, line

        if stop > self.checkpoint:
            self.obs.add_lines(decoded())
        batch = read > 0
        if batch:
            self.stale = True
        changes: list[IncidentChange] = []
        # add() makes status current; refresh() (incidents, alerts) may cost more as data grows,
        # so under load it runs at most every 2x its own duration, and at once when idle.
        due = time.monotonic() - self._refreshed_at >= max(self.interval, 2 * self.refresh_seconds)
        if (self.stale or self.rounds == 0) and (due or not batch):
            t0 = time.monotonic()
            changes = self.obs.refresh() or []
            self.refresh_seconds = time.monotonic() - t0
            self._refreshed_at = time.monotonic()
            self.stale = False
        status: dict[str, list[StatusRow]] = {}
        full = self.rounds == 0
        if full:
            for r in self.obs.status():
                status.setdefault(r.country, []).append(r)
        else:
            for cc in sorted(countries | {c.incident.country for c in changes}):
                status[cc] = self.obs.status(country=cc)
        if end != self.checkpoint:
            self.checkpoint = end
            self._save_checkpoint()
        self.rounds += 1
        return RoundResult(read, changes, status, full, self.stale)
