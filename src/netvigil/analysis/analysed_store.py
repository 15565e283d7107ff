"""The analysed store: store + analysis behind one object (docs/design.md section 15).

    obs = AnalysedStore(data_dir)             # embedded chdb in data_dir/chdb
    obs.add(measurements); changes = obs.refresh(); obs.status(country="RU"); obs.close()

`add` archives raw measurements (zstd JSONL by day: the source of truth), writes index rows
and verdicts; it is idempotent by measurement_uid (assigned when missing). Verdicts come from
the same VerdictEngine as `netvigil analyse` (verdicts/engine.py): measurements of a probe round may
arrive one by one (the collector), so after each batch the open rounds it touched are written
with their provisional verdicts, and each round's final verdicts when it closes.
`refresh` recomputes incidents for the countries that received data and returns the
start/change/end events for alerts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from netvigil.analysis import queries
from netvigil.analysis.incidents.builder import build_incidents
from netvigil.analysis.reads import (AggregateQuery, IncidentQuery, MeasurementIndexQuery, StoreReads, VerdictCount,
                                     VerdictQuery)
from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.engine import Judge, Judged, VerdictEngine, line_with_uid
from netvigil.analysis.incidents.window import LiveState, carry
from netvigil.model.measurement import Measurement
from netvigil.model.records import AggregateRow, Incident, IncidentChange, StatusRow, Verdict
from netvigil.store.engine import open_engine, sql_str
from netvigil.store.raw import FrameWriter, RawArchive, day_of
from netvigil.store.schema import add_missing_columns, create_tables, drop_tables

REFRESH_WINDOW = 3 * 86400  # seconds of recent data every refresh recomputes incidents from


log = logging.getLogger("netvigil.analysis")


class AnalysedStore:
    """The raw archive, the tables derived from it and the analysis, behind one object."""

    rebuild_skipped = 0  # archived lines the last rebuild could not judge or store

    def __init__(self, data_dir: Path, engine: str = "chdb", *, rules_dir: str | None = None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.rules = load_rules(rules_dir)
        self.raw = RawArchive(self.data_dir / "raw")
        target = self.data_dir / "chdb" if engine == "chdb" else engine
        self.db = open_engine(target)
        # every read is a typed request answered by StoreReads (analysis/reads.py): one SQL
        # text for these methods, the API and the dashboard
        self.reads = StoreReads(self.db, self.raw, status=self.status)
        self._lock = threading.RLock()
        self.judge = Judge(self.rules)
        self.engine = VerdictEngine(self.rules)
        self._dirty: dict[str, str] = {}  # country -> earliest measurement time added since the last refresh
        self._span_cache: dict[str, dict] = {}  # country -> spans per series, reused while its verdicts are unchanged
        # the live observatory's publication gate (analysis/incidents/quorum.py): None publishes every
        # incident (the operator's own data: analyse, rebuild, the demo); an incident it leaves
        # unconfirmed is kept in `unconfirmed_incidents`, apart from the published ones
        self.gate: Callable[[Incident, list[Verdict]], Incident] | None = None
        self.on_verdicts: Callable[[list[Verdict]], None] | None = None  # told every verdict written (the quorum's count)
        create_tables(self.db)
        self._rewrite_rows(add_missing_columns(self.db))  # a store made by an older version
        self.live = LiveState(self.db.query, self.table, REFRESH_WINDOW)
        if self.raw.days() and not self.db.query(f"SELECT uid FROM {self.table('measurements')} LIMIT 1"):
            self.rebuild()  # tables lost (e.g. a shared embedded session): derive them again

    def _rewrite_rows(self, tables: list[str]) -> None:
        """Write every incident of `tables` again, its columns taken from its body (columns
        added since the store was made read their defaults until then); the new row's higher
        version replaces the old one (ReplacingMergeTree(version), read FINAL)."""
        for table in tables:
            rows = self.db.query(f"SELECT body FROM {self.table(table)} FINAL")
            for k in range(0, len(rows), 500):  # bodies carry their evidence: inserts of bounded size
                self.db.insert(table, [queries.incident_row(msgspec.json.decode(r["body"], type=Incident))
                                       for r in rows[k:k + 500]])

    # ---- writing ------------------------------------------------------------------------
    def table(self, name: str) -> str:
        """NAME qualified with the store's database (chdb names it after the data directory)."""
        return f"{self.db.database}.{name}"

    def add(self, measurements: Iterable[Measurement]) -> int:
        return self.add_lines((m, None) for m in measurements)

    def add_lines(self, pairs: Iterable[tuple[Measurement, bytes | None]]) -> int:
        """Add (measurement, its JSON line as received) pairs; the line is what the raw
        archive keeps (None: encode the measurement). Each measurement is judged as it comes
        and its tree let go, so a batch never holds a thousand 20 KB trees: judged while
        still in cache, a measurement costs about half (benchmarks/bench_collector_latency.py)."""
        frames = FrameWriter()
        return self.add_judged(self._judged(pairs, frames), frames=frames.frames)

    def _judged(self, pairs: Iterable[tuple[Measurement, bytes | None]], frames: FrameWriter) -> Iterator[tuple[Judged, bytes]]:
        for m, line in pairs:
            line = line_with_uid(m, line)
            frames.add(day_of(m), line)
            yield self.judge(m), line

    def add_judged(self, items: Iterable[tuple[Judged, bytes | None]], *,
                   frames: Callable[[], dict[str, bytes]] | None = None,
                   lines: Callable[[], dict[str, bytes]] | None = None) -> int:
        """Add measurements already judged alone (Judge, maybe in another process);
        idempotent by measurement_uid. The raw archive gets `frames()` (day -> zstd frame of
        every item's line in order, compressed while the lines were in cache: FrameWriter)
        when every item is new; otherwise the new items' lines, from the items or `lines()`
        (uid -> line)."""
        with self._lock:
            fresh: dict[str, tuple[Judged, bytes | None, bool | None]] = {}
            total = 0
            for j, line in items:
                total += 1
                uid = j.measurement.measurement_uid
                if uid in fresh:
                    continue
                # recent uids are held in memory; only older measurements are looked up in the store
                new = self.live.unknown_here(uid, j.measurement.measurement_start_time)
                if new is not False:
                    fresh[uid] = (j, line, new)
            known = self._known_uids([u for u, (_, _, new) in fresh.items() if new is None])
            items = [(j, line) for u, (j, line, _) in fresh.items() if u not in known]
            if not items:
                return 0
            if frames is not None and len(items) == total:
                self.raw.append_frames(frames())
            else:  # some were known already: archive only the new ones
                given = lines() if lines is not None else {}
                self.raw.append((day_of(j.measurement), line if line is not None else given[j.measurement.measurement_uid])
                                for j, line in items)
            verdicts = self._index([j for j, _ in items])
            for j, _ in items:
                self.live.remember(j.measurement.measurement_uid, j.measurement.measurement_start_time)
            self.live.note(verdicts, set(fresh) - known)
            if self.on_verdicts is not None:
                self.on_verdicts(verdicts)
            return len(items)

    def _known_uids(self, uids: list[str]) -> set[str]:
        known: set[str] = set()
        for i in range(0, len(uids), 1000):
            chunk = ",".join(sql_str(u) for u in uids[i : i + 1000])
            rows = self.db.query(f"SELECT uid FROM {self.table('measurements')} WHERE uid IN ({chunk})")
            known.update(r["uid"] for r in rows)
        return known

    def _judge(self, items: list[Judged]) -> list[tuple[Measurement, Verdict]]:
        """Verdicts in time order: those final now, then the provisional verdicts of the open
        rounds this batch changed (a uid's later verdict replaces its earlier one)."""
        out = []
        for j in sorted(items, key=lambda j: j.measurement.measurement_start_time):
            m = j.measurement
            t = m.measurement_start_time[:19]
            if t < self._dirty.get(m.probe_cc, "9999"):
                self._dirty[m.probe_cc] = t
            out.extend(self.engine.push(j))
        out.extend(self.engine.pending())
        return out

    # ---- derived state ------------------------------------------------------------------
    def rebuild(self) -> int:
        """Drop every table and derive it again from the raw archive (with the current rules)."""
        with self._lock:
            drop_tables(self.db)
            create_tables(self.db)
            self._span_cache.clear()
            self.engine = VerdictEngine(self.rules)
            n = 0
            self.rebuild_skipped = 0
            batch: list[Judged] = []
            for m in self.raw.read_all_lenient():
                try:
                    if isinstance(m, Exception):
                        raise m
                    batch.append(self.judge(m))
                except Exception as exc:  # one bad archived line never stops a rebuild
                    self._skip(exc)
                    continue
                if len(batch) >= 5000:
                    n += self._index_lenient(batch)
                    batch = []
            n += self._index_lenient(batch)
            self.live = LiveState(self.db.query, self.table, REFRESH_WINDOW)  # derived from what was just written
            self._dirty = {r["cc"]: "1970-01-01 00:00:00" for r in self.db.query(f"SELECT DISTINCT cc FROM {self.table('measurements')}")}
            self.refresh()
            return n

    def _skip(self, exc: BaseException) -> None:
        self.rebuild_skipped += 1
        log.warning("rebuild: an archived measurement was set aside: %s", str(exc)[:300])

    def _index_lenient(self, batch: list[Judged]) -> int:
        """_index, a batch the store refuses split in halves down to the measurements it
        refuses, which are set aside (the collector quarantines them the same way live)."""
        if not batch:
            return 0
        try:
            self._index(batch)
            return len(batch)
        except Exception as exc:
            if len(batch) == 1:
                self._skip(exc)
                return 0
        mid = len(batch) // 2
        return self._index_lenient(batch[:mid]) + self._index_lenient(batch[mid:])

    def _index(self, batch: list[Judged]) -> list[Verdict]:
        """Write the index rows and verdicts of measurements new to the store."""
        if not batch:
            return []
        self.db.insert("measurements", [queries.measurement_row(j.measurement, j.row_service) for j in batch])
        judged = self._judge(batch)
        self.db.insert("verdicts", [queries.verdict_row(v, m.report_id) for m, v in judged])
        return [v for _, v in judged]

    def refresh(self) -> list[IncidentChange]:
        """Recompute the incidents of the countries that received data. Only a window is
        recomputed: from the earliest of (the last `REFRESH_WINDOW` of data, the start of any
        incident still open or ended inside that stretch); older incidents are final."""
        with self._lock:
            try:
                return self._refresh()
            except Exception:
                self.live.drop()  # held incidents may be ahead of the store now: re-read them
                raise

    def _refresh(self) -> list[IncidentChange]:
        changes: list[IncidentChange] = []
        rows: list[dict] = []
        for cc in sorted(self._dirty):
            latest = self.live.latest_time(cc)
            if not latest:
                continue
            horizon = queries.shift_time(latest, -REFRESH_WINDOW)
            held = self.live.country_incidents(cc)
            old_all = list(held.values())
            live = [i for i in old_all if i.end is None or i.end >= horizon]
            since = min([horizon, self._dirty[cc]] + [i.start for i in live])
            # an incident that overlaps `since` is recomputed whole
            since = min([since] + [i.start for i in old_all if i.end is not None and i.end >= since])
            since = max(since, self.live.floor(cc))  # memory bounded: before the floor is final (window.py)
            vs = self.live.verdicts(cc, since)
            built, carried = carry(since, build_incidents(vs, self.rules.incidents, self.rules.version,
                                                          cache=self._span_cache.setdefault(cc, {}),
                                                          grouped=(cc, self.live.series(cc, since))), old_all)
            new = {i.id: i for i in built}  # (carried: open at a bounded window's floor, window.py)
            if self.gate is not None:
                new = {iid: self.gate(i, vs) for iid, i in new.items()}
            old = {i.id: i for i in old_all if i.start >= since} | carried
            diff = queries.diff_incidents(old, new, latest)
            told = {c.incident.id for c in diff}
            # the quorum gate's verdict changed (more probes, a probe trusted): a change to announce
            diff += [IncidentChange(event="change", incident=i, at=latest,
                                    detail="backed by independent probes" if i.confirmed else "no longer backed")
                     for iid, i in new.items() if iid in old and iid not in told and old[iid].confirmed != i.confirmed]
            changes.extend(diff)
            rows += self._update_incidents(cc, held, old, new)
            self.live.windows[cc].prune(since)
        if rows:
            self.db.insert("incidents", rows)  # one insert (one part) for all countries
        self._dirty.clear()
        return changes

    def _update_incidents(self, cc: str, held: dict[str, Incident], old: dict[str, Incident],
                          new: dict[str, Incident]) -> list[dict]:
        """The rows to write: only what changed (a recomputed incident equal to the stored one
        is not written again); a DELETE (a mutation) runs only for incidents that are gone."""
        changed = [i for iid, i in new.items() if iid not in old or old[iid] != i]
        gone = [iid for iid in old if iid not in new]
        # published <-> unconfirmed: out of the table it leaves (the quorum gate)
        moved = [i for i in changed if i.id in old and old[i.id].confirmed != i.confirmed]
        for table, ids in (("incidents", gone + [i.id for i in moved if not i.confirmed]),
                           ("unconfirmed_incidents", gone + [i.id for i in moved if i.confirmed])):
            if ids:
                self.db.execute(f"DELETE FROM {self.table(table)} WHERE country = {sql_str(cc)} "
                                f"AND id IN ({','.join(sql_str(i) for i in ids)})")
        unconfirmed = [queries.incident_row(i) for i in changed if not i.confirmed]
        if unconfirmed:
            self.db.insert("unconfirmed_incidents", unconfirmed)
        for iid in gone:
            held.pop(iid, None)
        for i in changed:
            held[i.id] = i
        if changed or gone:  # keep the store's order: start, id
            items = sorted(held.values(), key=lambda i: (i.start, i.id))
            held.clear()
            held.update((i.id, i) for i in items)
        return [queries.incident_row(i) for i in changed if i.confirmed]

    def regate(self) -> None:
        """Have the next refresh judge every country's incidents again (the gate is new, or a
        probe's trust or a measurement's provenance changed)."""
        with self._lock:
            for table in ("incidents", "unconfirmed_incidents"):
                for r in self.db.query(f"SELECT DISTINCT country FROM {self.table(table)}"):
                    self._dirty.setdefault(r["country"], "9999")

    def unconfirmed_incidents(self, *, country=None, service=None) -> list[Incident]:
        """Incidents the quorum gate keeps unpublished (fewer independent probes, none trusted)."""
        return self.reads.incidents(IncidentQuery(country=country, service=service, unconfirmed=True))

    # ---- reading ------------------------------------------------------------------------
    def verdicts(self, *, country=None, asn=None, service=None, since=None, until=None, limit: int | None = 100,
                 offset: int = 0, order: str = "DESC", path: str | None = None) -> list[Verdict]:
        """`path`: "direct", "vpn", ... or None for every path (the read API defaults to direct)."""
        return self.reads.verdicts(VerdictQuery(country=country, asn=asn, service=service, since=since, until=until,
                                                path=path, limit=limit, offset=offset, order=order))

    def aggregates(self, *, country=None, asn=None, service=None, since=None, until=None, bucket: str = "1h",
                   path: str = "direct") -> list[AggregateRow]:
        """Counts per bucket of one measurement path (direct: what a user on the network sees;
        vpn or proxy: the circumvention path; any: every path mixed)."""
        return self.reads.aggregates(AggregateQuery(country=country, asn=asn, service=service, since=since,
                                                    until=until, bucket=bucket, path=path))

    def status(self, country=None, asn=None, service=None) -> list[StatusRow]:
        """The latest direct verdict per (country, network, service), from memory (window.py)."""
        with self._lock:
            if country:
                ongoing = [i for i in self.live.country_incidents(country).values() if i.end is None]
                if not asn and (not service or service == "*"):  # a country's whole grid: patched (window.py)
                    return self.live.country_rows(country, ongoing)
            else:
                ongoing = self.incidents(ongoing=True)
            return queries.status_rows(self.live.status_rows(country, asn, service), ongoing)

    def incidents(self, *, country=None, service=None, ongoing: bool | None = None) -> list[Incident]:
        return self.reads.incidents(IncidentQuery(country=country, service=service, ongoing=ongoing))

    def incident(self, id: str) -> Incident | None:
        return self.reads.incident(id)

    def verdict_count(self, *, country=None, asn=None, service=None, since=None, until=None,
                      path: str | None = None) -> int:
        """How many verdicts match the filters of `verdicts` (the total of a paged list)."""
        return self.reads.verdict_count(VerdictCount(country=country, asn=asn, service=service, since=since,
                                                       until=until, path=path))

    def measurement_index(self, *, country=None, asn=None, service=None, since=None, until=None,
                          test_name=None, path=None, limit: int = 100, offset: int = 0) -> tuple[int, list[dict]]:
        """(total, one page newest first) of the stored measurements' metadata: the listing
        of a store written directly (demo, rebuild) that the collector's index has not seen."""
        page = self.reads.measurement_index(MeasurementIndexQuery(
            country=country, asn=asn, service=service, since=since, until=until, test_name=test_name, path=path,
            limit=limit, offset=offset))
        return page.total, [msgspec.to_builtins(r) for r in page.rows]

    def measurement(self, uid: str) -> dict[str, Any] | None:
        return self.reads.measurement(uid)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "AnalysedStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
