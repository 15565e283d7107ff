"""The read side of the analysed store: typed read requests and the SQL that answers them.

Every read the API, the dashboard and the CLI make is one of the request Structs below; a
request names its result type, so a read is `StoreReads.answer(request)` (one `match`,
no method looked up by name) whether it runs in this process or arrives over the pipe of
the analysis process (the pump's `read`, observatory/pump*.py).
The filters are written once (Scope, Filters, IncidentFilters) and the requests inherit
them, keyword-only; a count request is its query's filters alone (`VerdictQuery.count()`).
The SQL is the same text on chdb and on a ClickHouse server (analysis/queries.py for the
shared fragments).
Writes may delete incidents that a refresh replaced just before inserting the new ones, so
a read between the two statements can miss them for that instant, as on any ClickHouse.

Who may read where (why there is not always a second connection):
- chdb is an embedded ClickHouse server: its data directory is locked by the process that
  opened it ("Cannot lock file .../status. Another server instance in same directory is
  already running"; tests/report/test_read_side.py checks this), and a process holds one
  session. So another *process* never opens the store; inside the owning process a reader
  uses the same session from its own thread (the session lock serialises statements, not
  whole analysis rounds), and ClickHouse parts are immutable, so a SELECT sees whole
  inserts only.
- a ClickHouse server takes any number of connections: the web process reads with its own.
- status is the exception: it is the writer's in-memory state (analysis/incidents/window.py), so a
  StatusQuery is answered by whoever holds the AnalysedStore (`status` given to StoreReads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

import msgspec

from netvigil.analysis import queries
from netvigil.model import times
from netvigil.model.measurement import measurement_to_dict
from netvigil.model.records import AggregateRow, Incident, StatusRow, Verdict
from netvigil.store.engine import Engine, sql_str, time_bucket
from netvigil.store.raw import RawArchive


def _fields(base: type[msgspec.Struct], req: msgspec.Struct) -> dict[str, Any]:
    """The values of `base`'s fields in `req`, an instance of a subclass of `base`."""
    return {f: getattr(req, f) for f in base.__struct_fields__}


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """Which cells: a country, a network, a service (None: all). Keyword-only, as every
    request below, so a field added to a base never shifts a caller's arguments."""
    country: str | None = None
    asn: str | None = None
    service: str | None = None


class StatusQuery(Scope, frozen=True, kw_only=True):
    """-> list[StatusRow]: the latest direct verdict per (country, network, service)."""


class Filters(Scope, frozen=True, kw_only=True):
    """The filters of the verdict and measurement tables (queries.where), defined once: the
    requests over those tables add only their paging or bucketing to them."""
    since: str | None = None
    until: str | None = None
    path: str | None = None  # None or "any": every path

    def filters(self) -> dict[str, Any]:
        """These filters alone (without the request's paging): keyword arguments of queries.where."""
        return _fields(Filters, self)


class VerdictCount(Filters, frozen=True, kw_only=True):
    """-> int: how many verdicts the filters match (the total of a paged VerdictQuery)."""


class VerdictQuery(Filters, frozen=True, kw_only=True):
    """-> list[Verdict], newest first unless `order` is "ASC". `path` None: every path."""
    limit: int | None = 100
    offset: int = 0
    order: str = "DESC"

    def count(self) -> VerdictCount:
        """The count of this query's filters (the total its pages are out of)."""
        return VerdictCount(**self.filters())


class AggregateQuery(Filters, frozen=True, kw_only=True):
    """-> list[AggregateRow]: counts per time bucket of one measurement path."""
    path: str = "direct"  # one path: counts of different paths do not add up
    bucket: str = "1h"


class MeasurementIndexQuery(Filters, frozen=True, kw_only=True):
    """-> MeasurementPage: stored measurements' metadata, newest first."""
    test_name: str | None = None
    limit: int = 100
    offset: int = 0


class IncidentFilters(msgspec.Struct, frozen=True, kw_only=True):
    """The filters of the incident table: `since`/`until` keep incidents overlapping [since,
    until); `asn` those touching the network; `technique` those using it or a technique of
    its class (`tls` matches `tls.reset_after_hello`), on the incident or on one of its
    networks. Networks and techniques are inside an incident's body: the store keeps them
    beside it as array columns (store/schema.py), so these filter and page in the store."""
    country: str | None = None
    service: str | None = None
    ongoing: bool | None = None
    since: str | None = None
    until: str | None = None
    asn: str | None = None
    technique: str | None = None


class IncidentCount(IncidentFilters, frozen=True, kw_only=True):
    """-> int: how many incidents the filters match (the total of a paged IncidentQuery)."""


class IncidentQuery(IncidentFilters, frozen=True, kw_only=True):
    """-> list[Incident] by (start, id), or newest first; `limit`/`offset` page after the filters."""
    newest_first: bool = False
    limit: int | None = None
    offset: int = 0
    unconfirmed: bool = False  # the incidents the quorum gate keeps unpublished instead (analysis/incidents/quorum.py)

    def count(self) -> IncidentCount:
        """The count of this query's filters."""
        return IncidentCount(**_fields(IncidentFilters, self))


class IncidentById(msgspec.Struct, frozen=True):
    """-> Incident | None; `unconfirmed`: also one the quorum keeps unpublished (its permalink
    answers, marked `confirmed: false`: analysis/incidents/quorum.py)."""
    id: str
    unconfirmed: bool = False


class MeasurementByUid(msgspec.Struct, frozen=True):
    """-> dict | None: the archived measurement (raw archive, the source of truth)."""
    uid: str


class IndexedMeasurement(msgspec.Struct, frozen=True):
    """One row of the store's measurement index."""
    uid: str
    time: str
    cc: str
    asn: str
    network_name: str
    test_name: str
    service: str
    input: str
    path: str
    report_id: str


class MeasurementPage(msgspec.Struct, frozen=True):
    total: int  # matching the filters
    rows: list[IndexedMeasurement]


ReadRequest = Union[StatusQuery, VerdictQuery, VerdictCount, AggregateQuery, IncidentQuery, IncidentCount,
                    IncidentById, MeasurementIndexQuery, MeasurementByUid]
STORE_READS = (VerdictQuery, VerdictCount, AggregateQuery, IncidentQuery, IncidentCount, IncidentById,
               MeasurementIndexQuery, MeasurementByUid)  # answered from the tables and archive alone


class StoreReads:
    """Answers read requests from the store's tables (and the raw archive for one measurement).

    `status`: the writer's in-memory status (AnalysedStore.status) when this object lives
    beside it; None where it does not (a StatusQuery here is then a usage error)."""

    def __init__(self, db: Engine, raw: RawArchive | None,
                 status: Callable[..., list[StatusRow]] | None = None):
        self.db = db
        self.raw = raw
        self._status = status

    def table(self, name: str) -> str:
        """The table's name qualified by the store's database."""
        return f"{self.db.database}.{name}"

    def answer(self, req: ReadRequest) -> Any:
        match req:
            case StatusQuery():
                return self.status(req)
            case VerdictQuery():
                return self.verdicts(req)
            case VerdictCount():
                return self.verdict_count(req)
            case AggregateQuery():
                return self.aggregates(req)
            case IncidentQuery():
                return self.incidents(req)
            case IncidentCount():
                return self.incident_count(req)
            case IncidentById():
                return self.incident(req.id, unconfirmed=req.unconfirmed)
            case MeasurementIndexQuery():
                return self.measurement_index(req)
            case MeasurementByUid():
                return self.measurement(req.uid)
        raise TypeError(f"not a read request: {type(req).__name__}")

    def status(self, q: StatusQuery) -> list[StatusRow]:
        if self._status is None:
            raise TypeError("status is the writer's state: ask the process that holds the AnalysedStore")
        return self._status(country=q.country, asn=q.asn, service=q.service)

    def verdicts(self, q: VerdictQuery) -> list[Verdict]:
        where = queries.where(**q.filters())
        order = "ASC" if q.order.upper() == "ASC" else "DESC"
        lim = f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}" if q.limit is not None else ""
        rows = self.db.query(f"SELECT * FROM {self.table('verdicts')} FINAL {where} ORDER BY time {order}, uid {lim}")
        return [queries.verdict_from_row(r) for r in rows]

    def verdict_count(self, q: VerdictCount) -> int:
        where = queries.where(**q.filters())
        rows = self.db.query(f"SELECT count() AS n FROM {self.table('verdicts')} FINAL {where}")
        return int(rows[0]["n"]) if rows else 0

    def aggregates(self, q: AggregateQuery) -> list[AggregateRow]:
        where = queries.where(**q.filters())
        start = time_bucket("time", times.bucket_seconds(q.bucket))
        rows = self.db.query(
            f"""SELECT {start} AS bucket,
                   cc, asn, service, class, technique, count() AS n, 0 AS probes
            FROM {self.table('verdicts')} FINAL {where}
            GROUP BY bucket, cc, asn, service, class, technique ORDER BY bucket, cc, asn, service""")
        # probes: distinct probe ids (an anonymous client: its /24 or /64; lost provenance: one
        # "unknown"), from the `voices` table, never report ids or measurements; the operator's
        # own imports have no voice row and no probe identity (analysis/incidents/quorum.py)
        who = ("multiIf(w.probe_id != '', w.probe_id, w.network != '', concat('net:', w.network), "
               "w.uid != '', 'unknown', '')")
        probes = self.db.query(
            f"""SELECT {start} AS bucket, cc, asn, service, uniqExactIf(who, who != '') AS probes,
                   uniqExactIf(net, net != '') AS networks
            FROM (SELECT v.time AS time, v.cc AS cc, v.asn AS asn, v.service AS service, {who} AS who,
                         w.network AS net
                  FROM (SELECT uid, time, cc, asn, service FROM {self.table('verdicts')} FINAL {where}) AS v
                  LEFT JOIN (SELECT uid, probe_id, network FROM {self.table('voices')} FINAL
                             WHERE uid IN (SELECT uid FROM {self.table('verdicts')} {where})) AS w
                  ON v.uid = w.uid)
            GROUP BY bucket, cc, asn, service""")
        found = {(r["bucket"], r["cc"], r["asn"], r["service"]): r for r in probes}
        out = queries.fold_aggregates(rows, {k: int(r["probes"]) for k, r in found.items()})
        for a in out:
            r = found.get((a.bucket, a.country, a.asn, a.service))
            a.source_networks = int(r["networks"]) if r else 0
        return out

    @staticmethod
    def _incident_where(q: IncidentFilters) -> str:
        conds = []
        if q.country:
            conds.append(f"country = {sql_str(q.country)}")
        if q.service:
            conds.append(f"service = {sql_str(q.service)}")
        if q.ongoing is True:
            conds.append("end IS NULL")
        elif q.ongoing is False:
            conds.append("end IS NOT NULL")
        if q.until:
            conds.append(f"start < toDateTime({sql_str(times.stored(q.until))}, 'UTC')")
        if q.since:
            conds.append(f"(end IS NULL OR end >= toDateTime({sql_str(times.stored(q.since))}, 'UTC'))")
        if q.asn:
            conds.append(f"has(asns, {sql_str(q.asn)})")
        if q.technique:  # the id or one below it (substring: servers before 19.x lack startsWith)
            tech, below = sql_str(q.technique), sql_str(q.technique + ".")
            conds.append(f"arrayExists(t -> t = {tech} OR substring(t, 1, length({below})) = {below}, techniques)")
        return ("WHERE " + " AND ".join(conds)) if conds else ""

    def incidents(self, q: IncidentQuery) -> list[Incident]:
        # newest first keeps ids ascending among equal starts: the order the pages list them in
        order = "start DESC, id" if q.newest_first else "start, id"
        lim = f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}" if q.limit is not None else ""
        table, where = "incidents", self._incident_where(q)
        if q.unconfirmed:  # those confirmed since are in `incidents`
            table = "unconfirmed_incidents"
            where += (" AND " if where else "WHERE ") + f"id NOT IN (SELECT id FROM {self.table('incidents')})"
        rows = self.db.query(f"SELECT body FROM {self.table(table)} FINAL {where} ORDER BY {order} {lim}")
        return [msgspec.json.decode(r["body"], type=Incident) for r in rows]

    def incident_count(self, q: IncidentCount) -> int:
        rows = self.db.query(f"SELECT count() AS n FROM {self.table('incidents')} FINAL {self._incident_where(q)}")
        return int(rows[0]["n"]) if rows else 0

    def incident(self, id: str, *, unconfirmed: bool = False) -> Incident | None:
        rows = self.db.query(f"SELECT body FROM {self.table('incidents')} FINAL WHERE id = {sql_str(id)} LIMIT 1")
        if not rows and unconfirmed:
            rows = self.db.query(f"SELECT body FROM {self.table('unconfirmed_incidents')} FINAL "
                                 f"WHERE id = {sql_str(id)} LIMIT 1")
        return msgspec.json.decode(rows[0]["body"], type=Incident) if rows else None

    def measurement_index(self, q: MeasurementIndexQuery) -> MeasurementPage:
        where = queries.where(**q.filters())
        if q.test_name:
            where += (" AND " if where else "WHERE ") + f"test_name = {sql_str(q.test_name)}"
        total = self.db.query(f"SELECT count() AS n FROM {self.table('measurements')} FINAL {where}")
        rows = self.db.query(
            f"SELECT uid, toString(time) AS time, cc, asn, network_name, test_name, service, input, path, report_id "
            f"FROM {self.table('measurements')} FINAL {where} ORDER BY time DESC, uid DESC "
            f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}") if q.limit > 0 else []
        return MeasurementPage(int(total[0]["n"]) if total else 0, [msgspec.convert(r, IndexedMeasurement) for r in rows])

    def measurement(self, uid: str) -> dict[str, Any] | None:
        if self.raw is None:
            return None
        rows = self.db.query(f"SELECT toString(day) AS day FROM {self.table('measurements')} "
                             f"WHERE uid = {sql_str(uid)} LIMIT 1")
        if not rows:
            return None
        m = self.raw.find(rows[0]["day"], uid)
        return measurement_to_dict(m) if m is not None else None
