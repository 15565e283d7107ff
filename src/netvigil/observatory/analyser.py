"""The store owner: feeds committed log lines to the AnalysedStore, one round at a time.

Used on one thread of the service (thread mode) or inside the analysis process (process
mode, pump_process.py): either way a single owner, as chdb requires. A round reads the
committed lines after the checkpoint (DATA_DIR/collector/analysed.json), `add()`s them,
`refresh()`es (throttled under load), reloads the status of the countries that changed,
and only then moves the checkpoint. After a crash it re-adds from the old checkpoint:
`add()` is idempotent by measurement_uid, so nothing is lost or doubled. A measurement that
does not decode, judge or store is set aside (quarantine.py) and the round goes on: one bad
line never holds the checkpoint back.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from netvigil.analysis.incidents.quorum import DEFAULT_QUORUM, Quorum, VoiceBook, voice_row
from netvigil.analysis.verdicts.engine import Judged, line_with_uid
from netvigil.collector import log as mlog
from netvigil.observatory.judge_worker import Batch, JudgeWorker, WorkerGone, read_log_measurements
from netvigil.collector.quarantine import Quarantine, Quarantined, reason_of
from netvigil.errors import MeasurementError
from netvigil.model.records import IncidentChange, StatusRow
from netvigil.store.raw import FrameWriter, day_of

if TYPE_CHECKING:
    from netvigil.analysis.analysed_store import AnalysedStore

log = logging.getLogger("netvigil.analyser")


def store_dir(data_dir: Path) -> Path:
    """Where the AnalysedStore's store is: DATA_DIR/store, or DATA_DIR itself when an
    AnalysedStore was opened on it directly (`netvigil demo`, `analyse`), so `netvigil serve`
    shows what those wrote."""
    data_dir = Path(data_dir)
    if not (data_dir / "store").exists() and ((data_dir / "chdb").exists() or (data_dir / "raw").exists()):
        return data_dir
    return data_dir / "store"


class RoundResult(msgspec.Struct):
    analysed: int
    changes: list[IncidentChange]  # only what may be announced (the quorum gate, analysis/incidents/quorum.py)
    # country -> its published status rows after the round; `full` when it is the whole status
    status: dict[str, list[StatusRow]]
    full: bool = False
    stale: bool = False  # added data whose incidents are not refreshed yet
    quarantined: int = 0  # measurements set aside this round (quarantine.py)
    # country -> its status rows the quorum does not back (shown apart, never as the status)
    unconfirmed: dict[str, list[StatusRow]] = {}
    checkpoint: tuple[int, int] = (0, 0)  # the log is analysed up to here (the collector's lag gate)


def read_quorum(data_dir: Path) -> int:
    """The quorum the service was started with (`netvigil serve --quorum`, written by the
    collector into DATA_DIR/collector/publication.json: the analysis may run in another process)."""
    try:
        return max(1, int(json.loads((Path(data_dir) / "collector" / "publication.json").read_text())["quorum"]))
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_QUORUM


class Analyser:
    """`judge_worker`: decode and judge in a second process (judge_worker.py) while this one
    stores; for a machine with a core to spare."""

    def __init__(self, data_dir: Path, *, engine: str = "chdb", interval: float = 1.0, batch: int = 1000,
                 judge_worker: bool = False, quorum: int | None = None):
        self.data_dir = Path(data_dir)
        self.quorum = quorum  # None: the service's (read_quorum)
        self.use_worker = judge_worker
        self.worker: JudgeWorker | None = None
        self.log_dir = self.data_dir / "log"
        self.engine, self.interval, self.batch = engine, interval, batch
        self.ckpt_path = self.data_dir / "collector" / "analysed.json"
        self.checkpoint = self._load_checkpoint()
        self.store: AnalysedStore | None = None  # opened by open(), the single writer
        self.rounds = 0
        self.refresh_seconds = 0.0
        self._refreshed_at = 0.0
        self.stale = False
        self.quarantine = Quarantine(self.data_dir)
        self.quarantined = 0  # this run
        self._archived_through: tuple[int, int] | None = None  # a failed round archived the log up to here
        self.book: VoiceBook | None = None  # who sent what (analysis/incidents/quorum.py)
        self.gate: Quorum | None = None

    def open(self) -> None:
        from netvigil.analysis.analysed_store import AnalysedStore  # the analysis area's facade

        self.store = AnalysedStore(store_dir(self.data_dir), engine=self.engine)
        # the quorum's caches are bounded by the live window's uid bound (NETVIGIL_MAX_HELD_UIDS)
        bound = self.store.live.max_uids
        self.book = VoiceBook(self.data_dir / "collector", lookup=self._stored_voices, max_rows=bound)
        self.book.reload_trust()
        self.book.tail()
        self.gate = Quorum(self.book, self.quorum if self.quorum is not None else read_quorum(self.data_dir),
                           max_uids=bound)
        self.store.gate = self.gate.incident
        self.store.on_verdicts = self.gate.feed  # status cells counted as verdicts are written
        self.gate.seed(self.store.incidents(ongoing=True))
        self.store.regate()  # what was published before (or by a rebuild) is judged again
        if self.use_worker:
            self.worker = JudgeWorker(self.log_dir, self.store.rules.version)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None
        if self.store is not None:
            self.store.close()
            self.store = None

    def _stored_voices(self, uids: list[str]) -> dict[str, dict]:
        """The store's `voices` rows of UIDS (who sent them, when they came through the collector)."""
        from netvigil.store.engine import sql_str

        out: dict[str, dict] = {}
        for i in range(0, len(uids), 1000):
            chunk = ",".join(sql_str(u) for u in uids[i : i + 1000])
            for r in self.store.db.query(f"SELECT uid, probe_id, network, trusted, claim FROM "
                                       f"{self.store.table('voices')} FINAL WHERE uid IN ({chunk})"):
                out[r["uid"]] = r
        return out

    def _voices(self, uids: list[str]) -> None:
        """Who sent what was just read from the log, into the store's `voices` table; a
        provenance line that comes after its measurement was counted, or a probe's trust that
        changed, has every incident judged again.

        The provenance file is read first: the collector writes a line's provenance before
        the line (collector/provenance.py), so every line of this round finds its voice. The
        other way round, each line committed since the last round was "late" (lost, then
        corrected: every incident judged again and every status cell counted again from the
        held window), every round under load: the analysis' cost grew with its window
        (issue #13, tests/observatory/test_provenance_order.py)."""
        late = self.book.tail()
        rows = self.book.from_log(uids)
        try:
            if rows or late:
                self.store.db.insert("voices", rows + [voice_row(p.uid, p) for p in late])
        except Exception:
            self.book.rollback([r["uid"] for r in rows], late)  # the round is tried again
            raise
        if self.book.reload_trust() or late:
            self.store.regate()
            self.stale = True

    def _publish(self, countries: set[str], changes: list[IncidentChange], full: bool) -> tuple[dict, dict]:
        """(published, unconfirmed) status rows by country: a cell is published when the quorum
        (or a trusted probe, or a published incident) backs it."""
        ccs = set() if full else countries | {c.incident.country for c in changes}
        rows = self.store.status() if full else [r for cc in sorted(ccs) for r in self.store.status(country=cc)]
        live = self.store.live
        held: dict = {}
        for cc in {r.country for r in rows}:
            held.update(live.country_incidents(cc))
        verdicts_since = live.verdicts  # (country, since): its window, or the store for older
        public: dict[str, list[StatusRow]] = {cc: [] for cc in ccs}
        apart: dict[str, list[StatusRow]] = {cc: [] for cc in ccs}
        for r in self.gate.status(rows, verdicts_since, held):
            (public if r.confirmed else apart).setdefault(r.country, []).append(r)
            (apart if r.confirmed else public).setdefault(r.country, [])
        return public, apart

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
        return (stop > self.checkpoint or self.stale or self.rounds == 0
                or (self.book is not None and self.book.registry_moved()))  # a probe's trust changed

    def prefetch(self, stop: tuple[int, int]) -> None:
        """Have the worker judge what is committed up to `stop` before the round asks."""
        if self.worker is not None and self.worker.ready and self.worker.inflight is None and stop > self.checkpoint:
            try:
                self.worker.request(self.checkpoint, stop, self.batch)
            except WorkerGone as exc:
                self._worker_gone(exc)

    def _worker_gone(self, exc: WorkerGone) -> None:
        log.error("%s; judging in the analysis process from now on", exc)
        self.worker.close()
        self.worker = None

    def _from_worker(self, stop: tuple[int, int]) -> Batch | None:
        """The next batch, judged by the worker; the batch after it is asked for at once
        (judged while this one is stored). None: judge here (no worker, starting, gone)."""
        if self.worker is None:
            return None
        try:
            batch = self.worker.take(self.checkpoint, stop, self.batch)
            if batch is not None and batch.end < stop:
                self.worker.request(batch.end, stop, self.batch)
            return batch
        except WorkerGone as exc:
            self._worker_gone(exc)
            return None

    def _lines(self, batch: Batch) -> dict[str, bytes]:
        """uid -> line of a worker's batch, read again (only when some were known already)."""
        scanned = list(mlog.scan(self.log_dir, batch.start, batch.end))
        if len(scanned) != len(batch.judged):
            raise MeasurementError(f"the log has {len(scanned)} lines where the judge worker read {len(batch.judged)}",
                                   where=f"log segment {batch.start[0]} offset {batch.start[1]}")
        return {j.measurement.measurement_uid: batch.lines.get(i, line)
                for i, ((_, line), j) in enumerate(zip(scanned, batch.judged)) if j is not None}

    def _store(self, items: list, start: tuple[int, int], end: tuple[int, int], *,
               frames: Callable[[], dict[str, bytes]], lines: Callable[[], dict[str, bytes]] | None = None,
               archived: bool = False) -> list[Quarantined]:
        """add_judged(items); when that fails and the store still answers, bisect to the
        items that fail alone and set them aside (the others are stored). A line reaches the
        raw archive once: a retry of a part whose attempt got as far as the archive skips it
        (add_judged archives all-new items from `frames`, here then empty)."""

        def attempt(part: list, archived: bool) -> tuple[BaseException, bool] | None:
            reached = False

            def mark(fn):
                def called():
                    nonlocal reached
                    reached = True
                    return fn()
                return called

            if archived:
                part_frames = mark(dict)  # nothing more to archive
            elif part is items:
                part_frames = mark(frames)
            else:
                part_frames = None  # archive this part's lines (from the items or `lines`)
            try:
                self.store.add_judged(part, frames=part_frames, lines=mark(lines or dict))
                return None
            except Exception as exc:  # noqa: BLE001
                return exc, archived or reached

        failure = attempt(items, archived) if items else None
        if failure is None:
            self._archived_through = None
            return []
        if not self._store_answers():  # the store itself is down: the round fails and is tried again,
            if failure[1]:  # over the same lines, without archiving them again
                self._archived_through = end
            raise failure[0]
        log.error("storing %d measurements failed (%s); looking for the ones at fault",
                  len(items), reason_of(failure[0]))
        bad: list[tuple[Judged, BaseException]] = []
        stack = [(items, failure)]
        while stack:
            part, (exc, archived) = stack.pop()
            if len(part) == 1:
                bad.append((part[0][0], exc))
                continue
            for half in (part[len(part) // 2:], part[: len(part) // 2]):
                failed = attempt(half, archived)
                if failed is not None:
                    stack.append((half, failed))
        return self._set_aside(bad, start, end)

    def _store_answers(self) -> bool:
        try:
            self.store.db.query("SELECT 1")
            return True
        except Exception:  # noqa: BLE001
            return False

    def _set_aside(self, bad: list, start: tuple[int, int], end: tuple[int, int]) -> list[Quarantined]:
        """Quarantine entries for judged items the store refused (their lines found in the log)."""
        if not bad:
            return []
        wanted = {j.measurement.measurement_uid: exc for j, exc in bad}
        out = []
        for pos, line in mlog.scan(self.log_dir, start, end):
            for uid in [u for u in wanted if u.encode() in line]:
                out.append(Quarantined(pos, "store", reason_of(wanted.pop(uid)), uid))
        for uid, exc in wanted.items():  # not found by its text (the uid was added here)
            out.append(Quarantined(mlog.Position(start[0], start[1], 0), "store", reason_of(exc), uid))
        for q in out:
            log.error("set aside %s: the store refused it: %s", q.uid, q.reason)
        return out

    def round(self, stop: tuple[int, int]) -> RoundResult:
        """One round over the log up to `stop`, the writer's committed end. A measurement
        that fails to decode, judge or store is set aside (quarantine.py), not retried."""
        end = self.checkpoint
        countries: set[str] = set()
        read = 0
        failed: list[Quarantined] = []
        archived = self._archived_through is not None and self._archived_through > self.checkpoint
        if archived:  # the last round failed after archiving these lines: the same lines again
            stop = min(stop, self._archived_through)
        if stop > self.checkpoint:
            worked = None if archived else self._from_worker(stop)
            if worked is not None:
                judged = [j for j in worked.judged if j is not None]
                failed.extend(worked.failed)
                countries.update(j.measurement.probe_cc for j in judged)
                end = worked.end
                refused = self._store([(j, None) for j in judged], worked.start, end,
                                      frames=lambda: worked.frames, lines=lambda: self._lines(worked))
                self._voices([j.measurement.measurement_uid for j in judged])
                read = len(judged) - len(refused)
                failed.extend(refused)
            else:
                frames = FrameWriter()
                items: list[tuple[Judged, bytes]] = []
                scanned = 0
                for pos, m, line in read_log_measurements(self.log_dir, self.checkpoint, stop, self.batch):
                    scanned += 1
                    end = (pos.segment, pos.offset + pos.length + 1)
                    if isinstance(m, Quarantined):
                        failed.append(m)
                        continue
                    try:  # judged while its tree is in cache; only the slim Judged is kept
                        line = line_with_uid(m, line)
                        j = self.store.judge(m)
                    except Exception as exc:  # noqa: BLE001  (one measurement must not stop the round)
                        log.error("set aside %s: the judge failed: %s", m.measurement_uid, exc)
                        failed.append(Quarantined(pos, "judge", reason_of(exc), m.measurement_uid))
                        continue
                    frames.add(day_of(m), line)
                    countries.add(m.probe_cc)
                    items.append((j, line))
                end = mlog.past_empty_segment(end, stop, scanned < self.batch)
                refused = self._store(items, self.checkpoint, end, frames=frames.frames, archived=archived)
                self._voices([j.measurement.measurement_uid for j, _ in items])
                read = len(items) - len(refused)
                failed.extend(refused)
        if stop <= self.checkpoint:
            self._voices([])  # trust changed, late provenance
        self.quarantine.add(failed)  # durable before the checkpoint moves past them
        self.quarantined += len(failed)
        added = read > 0
        if added:
            self.stale = True
        changes: list[IncidentChange] = []
        # add() makes status current; refresh() (incidents, alerts) costs more as the window
        # fills, so under load it runs at most every 4x its own duration (a fifth of the time
        # at most, the rest keeps status current), and at once when idle.
        due = time.monotonic() - self._refreshed_at >= max(self.interval, 4 * self.refresh_seconds)
        if (self.stale or self.rounds == 0) and (due or not added):
            t0 = time.monotonic()
            changes = self.gate.changes(self.store.refresh() or [])
            self.refresh_seconds = time.monotonic() - t0
            self._refreshed_at = time.monotonic()
            self.stale = False
        full = self.rounds == 0
        status, unconfirmed = self._publish(countries, changes, full)
        if end != self.checkpoint:
            self.checkpoint = end
            self._save_checkpoint()
            self.book.save()  # a restart reads the provenance file on from here (quorum.py)
        self.rounds += 1
        return RoundResult(read, changes, status, full, self.stale, len(failed), unconfirmed, self.checkpoint)
