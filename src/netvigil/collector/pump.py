"""Continuous analysis of what arrives: log -> Observatory.add -> refresh -> alerts.

The Observatory (netvigil.analysis.service) owns the store, and one process, one thread
owns it: every call to it goes through this pump's single worker thread, API reads
included. The pump reads committed log lines after its checkpoint (data_dir/collector/
analysed.json), adds them, refreshes incrementally, hands IncidentChange events to the
alert sink, and only then moves the checkpoint. After a crash it re-adds from the old
checkpoint: add() is idempotent by measurement_uid, so nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from netvigil.collector.log import MeasurementLog
from netvigil.errors import MeasurementError
from netvigil.model.measurement import Measurement, decode_measurement
from netvigil.model.records import IncidentChange, StatusRow

log = logging.getLogger("netvigil.pump")


class AnalysisUnavailable(Exception):
    pass


def store_dir(data_dir: Path) -> Path:
    """Where the Observatory's store is: DATA_DIR/store, or DATA_DIR itself when an
    Observatory was opened on it directly (`netvigil demo`, `analyse`), so `netvigil serve`
    shows what those wrote."""
    data_dir = Path(data_dir)
    if not (data_dir / "store").exists() and ((data_dir / "chdb").exists() or (data_dir / "raw").exists()):
        return data_dir
    return data_dir / "store"


class AnalysisPump:
    def __init__(self, data_dir: Path, mlog: MeasurementLog, *, engine: str = "chdb",
                 interval: float = 1.0, batch: int = 1000, enabled: bool = True,
                 on_changes: Callable[[list[IncidentChange]], None] | None = None):
        self.data_dir = Path(data_dir)
        self.mlog = mlog
        self.interval = interval
        self.batch = batch
        self.on_changes = on_changes
        self.engine = engine
        self.enabled = enabled
        self.error: str | None = None if enabled else "analysis is disabled in this collector"
        self.obs: Any = None
        self.exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netvigil-store")
        self.ckpt_path = self.data_dir / "collector" / "analysed.json"
        self.checkpoint = self._load_checkpoint()
        self.analysed = 0
        self.rounds = 0
        self.last_round_at: float | None = None
        self.last_round_seconds = 0.0
        self.refresh_seconds = 0.0
        self.status_view: dict[str, list[StatusRow]] | None = None
        self.coalesce = min(0.1, interval)
        self._refreshed_at = 0.0
        self._stale = False
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

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

    # ---- the store thread -------------------------------------------------------------

    def _open(self) -> None:
        from netvigil.analysis.service import Observatory  # the analysis area's facade

        self.obs = Observatory(store_dir(self.data_dir), engine=self.engine)

    async def call(self, name: str, *args, **kwargs) -> Any:
        """Run one Observatory method on the store thread."""
        if self.obs is None:
            raise AnalysisUnavailable(self.error or "analysis is starting")
        fn = getattr(self.obs, name)
        return await asyncio.get_running_loop().run_in_executor(self.exec, lambda: fn(*args, **kwargs))

    def _round(self) -> tuple[int, list[IncidentChange]]:
        stop = self.mlog.end()
        batch: list[Measurement] = []
        end = self.checkpoint
        for pos, line in self.mlog.scan(self.checkpoint, stop=stop, limit=self.batch):
            try:
                batch.append(decode_measurement(line, where=f"log segment {pos.segment} offset {pos.offset}"))
            except MeasurementError as exc:  # the collector validated it; never block the pump
                log.error("%s", exc)
            end = (pos.segment, pos.offset + pos.length + 1)
        if batch:
            self.obs.add(batch)
            self._stale = True
        changes: list[IncidentChange] = []
        # add() makes status current; refresh() (incidents, alerts) may cost more as data grows,
        # so under load it runs at most every 2x its own duration, and at once when idle.
        due = time.monotonic() - self._refreshed_at >= max(self.interval, 2 * self.refresh_seconds)
        if (self._stale or self.rounds == 0) and (due or not batch):
            t0 = time.monotonic()
            changes = self.obs.refresh() or []
            self.refresh_seconds = time.monotonic() - t0
            self._refreshed_at = time.monotonic()
            self._stale = False
        touched = {m.probe_cc for m in batch} | {c.incident.country for c in changes}
        if self.status_view is None:
            self._set_status(self.obs.status(), None)
        elif touched:
            for cc in sorted(touched):
                self._set_status(self.obs.status(country=cc), cc)
        if end != self.checkpoint:
            self.checkpoint = end
            self._save_checkpoint()
        return len(batch), changes

    def _set_status(self, rows: list[StatusRow], country: str | None) -> None:
        """The status read model: API reads of status never wait for the store thread."""
        view = dict(self.status_view or {})
        if country is None:
            view = {}
        else:
            view.pop(country, None)
        for r in rows:
            view.setdefault(r.country, []).append(r)
        self.status_view = view  # one assignment: readers see the old or the new view

    def status(self, country: str | None = None, asn: str | None = None, service: str | None = None):
        """Status rows from the read model (None until the first analysis round)."""
        view = self.status_view
        if view is None:
            return None
        groups = [view.get(country, [])] if country else list(view.values())
        return [r for g in groups for r in g if (asn is None or r.asn == asn) and (service is None or r.service == service)]

    # ---- the loop ---------------------------------------------------------------------

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.exec, self._open)
            self.error = None
        except Exception as exc:  # missing module, store cannot open: collector still works
            self.error = f"analysis is not available: {type(exc).__name__}: {exc}"
            log.warning(self.error)
            return
        while True:
            t0 = time.monotonic()
            try:
                n, changes = await loop.run_in_executor(self.exec, self._round)
                self.analysed += n
                self.rounds += 1
                self.last_round_at = time.time()
                self.last_round_seconds = time.monotonic() - t0
                self.error = None
                if changes and self.on_changes:
                    self.on_changes(changes)
                if n >= self.batch:
                    continue  # backlog: go on at once
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.error = f"analysis round failed: {type(exc).__name__}: {exc}"
                log.exception("analysis round failed")
            if not self._wake.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
                except asyncio.TimeoutError:
                    pass
            self._wake.clear()
            await asyncio.sleep(self.coalesce)  # let a burst of submissions land in one round

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.obs is not None:
            await asyncio.get_running_loop().run_in_executor(self.exec, self.obs.close)
            self.obs = None
        self.exec.shutdown(wait=True)
