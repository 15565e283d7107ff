"""Continuous analysis of what arrives: log -> AnalysedStore.add -> refresh -> alerts.

The pump drives an Analyser (analyser.py), the single owner of the store, and keeps what
the API needs without waiting for it: the status read model (reloaded per country after
each round) and progress counters; IncidentChange events go to the alert sink.
Reads are typed requests (analysis/reads.py) answered by `read()`: the pump knows where
each can be answered (beside the writer, or by the writer itself). Two modes, one interface:
  AnalysisPump  the Analyser on one thread of this process (simple; shares the GIL)
  ProcessPump   the Analyser in its own process (pump_process.py; ingestion keeps its core)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from netvigil.observatory.analyser import Analyser, RoundResult
from netvigil.collector.log import MeasurementLog
from netvigil.errors import AnalysisUnavailable
from netvigil.collector.quarantine import Quarantine
from netvigil.analysis.reads import ReadRequest, StatusQuery, StoreReads
from netvigil.model.records import IncidentChange, StatusRow

log = logging.getLogger("netvigil.pump")


class PumpBase:
    """Status read model, counters and the interface the routes use."""

    def __init__(self, data_dir: Path, mlog: MeasurementLog, *, engine: str = "chdb", interval: float = 1.0,
                 batch: int = 1000, enabled: bool = True,
                 on_changes: Callable[[list[IncidentChange]], None] | None = None):
        self.data_dir = Path(data_dir)
        self.mlog = mlog
        self.engine, self.interval, self.batch = engine, interval, batch
        self.enabled = enabled
        self.on_changes = on_changes
        self.error: str | None = None if enabled else "analysis is disabled in this collector"
        self.ready = False  # the store is open: reads are answered (an AnalysisUnavailable until then)
        self.analysed = 0
        self.quarantine = Quarantine(self.data_dir)  # what the analysis set aside (quarantine.py)
        self.quarantined = self.quarantine.count()  # since the data dir was made
        self.rounds = 0
        self.last_round_at: float | None = None
        self.status_view: dict[str, list[StatusRow]] | None = None
        self.checkpoint: tuple[int, int] = (0, 0)  # the log is analysed up to here
        self.unconfirmed_view: dict[str, list[StatusRow]] = {}
        self._stale = False

    def _apply(self, res: RoundResult) -> None:
        view = {} if res.full or self.status_view is None else dict(self.status_view)
        view.update(res.status)
        self.status_view = view  # one assignment: readers see the old or the new view
        apart = {} if res.full else dict(self.unconfirmed_view)
        apart.update(res.unconfirmed)
        self.unconfirmed_view = apart  # cells the quorum does not back (analysis/incidents/quorum.py)
        self.analysed += res.analysed
        self.checkpoint = max(self.checkpoint, res.checkpoint)
        self.quarantined += res.quarantined
        self.rounds += 1
        self._stale = res.stale
        self.last_round_at = time.time()
        self.error = None
        if res.changes and self.on_changes:
            self.on_changes(res.changes)

    def status(self, country: str | None = None, asn: str | None = None, service: str | None = None,
               unconfirmed: bool = False):
        """Status rows from the read model (None until the first analysis round); `unconfirmed`:
        the cells the quorum does not back instead."""
        view = self.unconfirmed_view if unconfirmed else self.status_view
        if view is None:
            return None
        groups = [view.get(country, [])] if country else list(view.values())
        return [r for g in groups for r in g if (asn is None or r.asn == asn) and (service is None or r.service == service)]

    def live_status(self, q: StatusQuery) -> list[StatusRow] | None:
        return self.status(q.country, q.asn, q.service)

    def unconfirmed_status(self, q: StatusQuery) -> list[StatusRow] | None:
        return self.status(q.country, q.asn, q.service, unconfirmed=True)

    def _check_ready(self) -> None:
        if not self.ready:
            raise AnalysisUnavailable(self.error or "analysis is starting")


class AnalysisPump(PumpBase):
    """The Analyser on one thread of this process."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netvigil-store")
        self.analyser = Analyser(self.data_dir, engine=self.engine, interval=self.interval, batch=self.batch)
        # reads run on their own threads beside the store thread (one chdb session per
        # process, shared: its lock serialises statements, so a read never waits a round)
        self.read_exec = ThreadPoolExecutor(max_workers=2, thread_name_prefix="netvigil-read")
        self.coalesce = min(0.1, self.interval)
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._reads: StoreReads | None = None  # the tables and archive, read beside the writer
        self._writer_reads: StoreReads | None = None  # with the writer's in-memory status

    async def read(self, req: ReadRequest) -> Any:
        """Answer a typed read: status (the writer's memory) on the store thread, the rest
        from the tables on a read thread."""
        self._check_ready()
        loop = asyncio.get_running_loop()
        if isinstance(req, StatusQuery):
            return await loop.run_in_executor(self.exec, self._writer_reads.answer, req)
        return await loop.run_in_executor(self.read_exec, self._reads.answer, req)

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.exec, self.analyser.open)
            store = self.analyser.store
            self._reads = StoreReads(store.db, store.raw)
            self._writer_reads = StoreReads(store.db, store.raw, status=store.status)
            self.ready, self.error = True, None
        except Exception as exc:  # missing module, store cannot open: collector still works
            self.error = f"analysis is not available: {type(exc).__name__}: {exc}"
            log.warning(self.error)
            return
        while True:
            try:
                stop = self.mlog.end()
                if self.analyser.pending(stop):
                    res = await loop.run_in_executor(self.exec, self.analyser.round, stop)
                    self._apply(res)
                    if res.analysed + res.quarantined >= self.batch:
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
        self.ready = False  # the store is open: reads are answered (an AnalysisUnavailable until then)
        self.read_exec.shutdown(wait=True)  # no read left on the store it closes next
        await asyncio.get_running_loop().run_in_executor(self.exec, self.analyser.close)
        self.exec.shutdown(wait=True)
