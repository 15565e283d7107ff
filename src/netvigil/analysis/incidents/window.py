"""The live analysis' memory: what `refresh()` and `status()` would otherwise re-read from the
store on every round (measured: re-reading and decoding the 3-day window of verdicts per
country per refresh, a GROUP BY ... FINAL per status read, one uid query per batch).

Held here, all derived from the store and (re)loaded from it on demand, so a restart or a
request for older data than is held falls back to the store:
- `uids` (and `uid_days`, by minute): the measurement uids from `uid_floor` on (dedup of a
  batch without a query; a measurement older than the floor is looked up in the store);
- per country, the verdicts of its refresh window as the store returns them (one per uid,
  the last judgement wins, as ReplacingMergeTree keeps the last insert), from `since` on;
- per (country, asn, service), the latest direct verdict and the count (the status grid;
  latest = greatest time, then smallest uid, as argMax meets them in key order);
- per country, its incidents (but those that ended before its floor: final, in the store);
- per country, the latest verdict time (the refresh horizon).

Memory is bounded, not only by time (issue #13): a live fleet's measurements all fall inside
the 3-day window, so at 5,000/s the window alone would be 1.3 billion verdicts. At most
`max_held` verdicts are held in all: past it, each country keeps its newest share and its
`floor` rises; the refresh then starts at the floor, and incidents that ended before it are
final, as those before the 3-day horizon are. An incident still open at the floor (a block
that lasts weeks) or ending after it is carried (`carry`): recomputed from the floor, it keeps
its id and start and each network's start; its measurement and probe counts are then those
from the floor on, or as they were if higher. Held uids are bounded the same way
(`max_uids`, by minute of measurement time; older ones are looked up in the store).
An operator sets the bounds with NETVIGIL_MAX_HELD_VERDICTS and NETVIGIL_MAX_HELD_UIDS.
"""

from __future__ import annotations

import bisect
import operator
import os
import sys
from dataclasses import dataclass, field
from typing import Callable

import msgspec

from netvigil.analysis import queries
from netvigil.model import times
from netvigil.model.records import Incident, StatusRow, Verdict
from netvigil.store.engine import sql_str

# a time the store keeps as written (DateTime('UTC') range); others fall back to store reads
_TIME = times.STORABLE_RE


def stored_form(v: Verdict) -> Verdict:
    """The verdict as a store read would return it (for incident building: times, empty names)."""
    t = queries._time(v.measurement_start_time)
    if (t != v.measurement_start_time or v.service == "" or v.technique == "" or v.probe_network_name == ""
            or v.input == "" or v.domain == ""):
        v = msgspec.structs.replace(v, measurement_start_time=t, service=v.service or None,
                                    technique=v.technique or None, probe_network_name=v.probe_network_name or None,
                                    input=v.input or None, domain=v.domain or None)
    return v


_ORDER = operator.attrgetter("measurement_start_time", "measurement_uid")  # the store's ORDER BY time, uid
PRUNE_STEP = 3600
MAX_HELD = 400_000  # verdicts held in all countries' windows (~1.5 KB each with what refers to them)
# measurement uids held for dedup (~150 bytes each, measured: ~75 MB): reached in minutes by a
# busy fleet, so memory is flat after a short warm-up; a measurement older than the floor is
# looked up in the store (one query per batch)
MAX_UIDS = 500_000
SHRINK_TO = 0.8  # past a bound, keep this share of it (the next shrink is a while away)
LATE_PLACE = 4096  # a verdict that comes after up to this many later ones is put in its place


def carry(since: str, built: list[Incident], held) -> tuple[list[Incident], dict[str, Incident]]:
    """Incidents recomputed from `since` (`built`), with those of `held` that began before it
    and overlap it (open, or ending at or after it: only a bounded window starts inside one)
    carried on: the built incident of the same country, service and kind that begins first,
    no later than the held one ends, takes the held one's id and start (and each network's
    start), and counts as many measurements and probes as either; a held one with nothing
    built to carry it stays as it was. Returns (incidents, the carried ones by id), the
    carried ones to be diffed as the old state of their continuations."""
    carried = {i.id: i for i in held if i.start < since and (i.end is None or i.end >= since)}
    if not carried:
        return built, {}
    out = list(built)
    taken: set[int] = set()
    for c in sorted(carried.values(), key=lambda i: i.start):
        j = next((k for k, n in sorted(enumerate(out), key=lambda kn: kn[1].start)
                  if k not in taken and n.country == c.country and n.service == c.service and n.kind == c.kind
                  and n.id not in carried and n.start <= (c.end or "9999")), None)
        if j is None:
            out.append(c)  # nothing after the floor carries it on: as it was
            continue
        taken.add(j)
        n = out[j]
        starts: dict[str, str] = {}
        for ns in c.networks:
            starts[ns.asn] = min(starts.get(ns.asn, ns.start), ns.start)
        networks = []
        for ns in n.networks:
            first = starts.get(ns.asn)
            if first is not None and first < ns.start:
                segs = [dict(ns.techniques[0], start=first), *ns.techniques[1:]] if ns.techniques else []
                ns = msgspec.structs.replace(ns, start=first, techniques=segs)
            networks.append(ns)
        evidence = n.evidence
        if evidence is not None and c.evidence is not None:
            evidence = msgspec.structs.replace(
                evidence, measurement_count=max(evidence.measurement_count, c.evidence.measurement_count),
                vantage_networks=max(evidence.vantage_networks, c.evidence.vantage_networks))
        out[j] = msgspec.structs.replace(n, id=c.id, start=c.start, networks=networks, evidence=evidence)
    return out, carried


def _bound(name: str, default: int) -> int:
    """A memory bound from the environment (a positive whole number), else `default`."""
    from netvigil.errors import ConfigError

    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        n = int(value.replace("_", ""))
    except ValueError:
        n = 0
    if n <= 0:
        raise ConfigError(f"must be a positive whole number, not {value[:40]!r}", where=name)
    return n


_START = operator.attrgetter("measurement_start_time")


def _first_at(vs: list[Verdict], since: str) -> int:
    """Index of the first of VS (in _ORDER) at or after SINCE."""
    return bisect.bisect_left(vs, since, key=_START)


def _series_key(v: Verdict) -> tuple | None:
    """The series a verdict belongs to in the incident builder (builder.spans_from_verdicts):
    (direct?, asn, service); None for a verdict without a service (no series)."""
    return (v.path == "direct", v.probe_asn, v.service) if v.service else None


@dataclass
class CountryWindow:
    """One country's verdicts from `since` on, one per uid (the last judgement wins, as the
    store keeps it), held in time order and grouped by series as they arrive."""

    since: str  # every verdict of the country with time >= since is in by_uid
    by_uid: dict[str, Verdict] = field(default_factory=dict)
    _sorted: list[Verdict] | None = None
    # the verdicts of `_sorted` per series (_series_key), each in the same order: kept as
    # `_sorted` is, so a refresh need not group and sort the whole window again (None: grouped
    # again when next asked)
    _series: dict[tuple, list[Verdict]] | None = None

    def put(self, v: Verdict) -> None:
        """Held in order as it comes: a verdict after the last is appended and a later judgement
        of a uid at the same time replaces it in place (live data nearly always is one or the
        other), so a round costs its own verdicts, not a sort of the window (measured under a
        sustained load: re-sorting 400,000 verdicts per round was 6% of the analysis)."""
        if v.measurement_start_time < self.since:
            return
        old = self.by_uid.get(v.measurement_uid)
        self.by_uid[v.measurement_uid] = v
        done = self._sorted
        if done is None:
            return
        key = _ORDER(v)
        series = self._series
        if old is None:
            if not done or key >= _ORDER(done[-1]):
                done.append(v)
                if series is not None and v.service:
                    series.setdefault(_series_key(v), []).append(v)
                return
            # a little late (a fleet's measurements arrive seconds out of their time order):
            # put in its place near the end, not the whole window sorted again at the next refresh
            # (measured under a sustained load from 1,000 probes: ~10% of a refresh, and the
            # series grouped again each time)
            i = bisect.bisect_right(done, key, len(done) - LATE_PLACE if len(done) > LATE_PLACE else 0, key=_ORDER)
            if i > len(done) - LATE_PLACE and (i == 0 or _ORDER(done[i - 1]) < key):
                done.insert(i, v)
                if series is not None and v.service:
                    held = series.setdefault(_series_key(v), [])
                    held.insert(bisect.bisect_right(held, key, key=_ORDER), v)
                return
        elif old.measurement_start_time == v.measurement_start_time:
            i = bisect.bisect_left(done, key, key=_ORDER)
            if i < len(done) and done[i] is old:
                done[i] = v
                if series is not None and (old.service or v.service):
                    self._replace_in_series(old, v, key)
                return
        self._sorted = self._series = None  # out of order: sorted again when next asked

    def _replace_in_series(self, old: Verdict, v: Verdict, key: tuple) -> None:
        sk = _series_key(v)
        held = self._series.get(sk) if sk == _series_key(old) else None
        if held is not None:
            i = bisect.bisect_left(held, key, key=_ORDER)
            if i < len(held) and held[i] is old:
                held[i] = v
                return
        self._series = None  # (a re-judged verdict that changed series: grouped again when asked)

    def ordered(self, since: str) -> list[Verdict]:
        """Verdicts from `since` on, ordered as the store's ORDER BY time, uid."""
        if self._sorted is None:
            self._sorted = sorted(self.by_uid.values(), key=_ORDER)
            self._series = None
        if since <= self.since:
            return self._sorted
        return self._sorted[_first_at(self._sorted, since):]

    def series(self, since: str) -> dict[tuple, list[Verdict]]:
        """The verdicts of `ordered(since)` grouped by series (_series_key), each list in that
        order and a copy (the caller may keep it), the series in the order their first verdict
        comes in `ordered(since)`: what grouping that list gives (builder.spans_from_series)."""
        ordered = self.ordered(since)
        if self._series is None:
            grouped: dict[tuple, list[Verdict]] = {}
            for v in self._sorted:
                if v.service:
                    grouped.setdefault(_series_key(v), []).append(v)
            self._series = grouped
        out = []
        cut = since > self.since
        for k, vs in self._series.items():
            vs = vs[_first_at(vs, since):] if cut else list(vs)
            if vs:
                out.append((_ORDER(vs[0]), k, vs))
        if len(out) > 1 and ordered:
            out.sort(key=operator.itemgetter(0))
        return {k: vs for _, k, vs in out}

    def prune(self, since: str) -> None:
        """Let go of verdicts before `since`, once it moved an hour (not on every refresh:
        a pass over the whole window each time cost 8% of a refresh under load)."""
        if since > self.since and (not _TIME.match(self.since) or queries.shift_time(self.since, PRUNE_STEP) <= since):
            if self._sorted is not None:  # (sliced before `since` moves: ordered() slices only past it)
                self._sorted = self.ordered(since)
            self.since = since
            self._series = None
            self.by_uid = {u: v for u, v in self.by_uid.items() if v.measurement_start_time >= since}

    def bound(self, keep: int) -> str | None:
        """Keep about the newest `keep` verdicts (whole rounds: a cut falls on a time). The new
        `since`, or None when nothing was let go."""
        ordered = self.ordered(self.since)
        if len(ordered) <= keep:
            return None
        cut = ordered[len(ordered) - max(keep, 1)].measurement_start_time
        if cut <= self.since:
            return None
        kept = self.ordered(cut)
        self.since, self._sorted, self._series = cut, kept, None
        self.by_uid = {v.measurement_uid: v for v in kept}
        return cut


@dataclass(slots=True)
class StatusCell:
    """One cell of the status grid, (country, network, service): its latest direct verdict
    (greatest time, then smallest uid, as argMax meets them in key order) and how many
    measurements it counts. Updated in place by each verdict written."""

    time: str = ""
    uid: str = ""
    klass: str = ""
    technique: str = ""
    network_name: str = ""
    measurements: int = 0


@dataclass(slots=True)
class CountryRows:
    """One country's status rows as last built (LiveState.country_rows): the grid they were
    built from, the incidents' spans they carry, each cell's place."""

    grid: dict
    span_of: dict
    at: dict[tuple, int]
    rows: list[StatusRow]


def _row(key: tuple, c: StatusCell, span_of: dict) -> StatusRow:
    cc, asn, svc = key
    return queries.status_row(cc, asn, svc, c.klass, c.technique, c.time, c.measurements, c.network_name, span_of)


class LiveState:
    """The live analysis' memory of the store (module docstring): per country its window of
    verdicts, incidents and latest time, the status grid and the held uids, each bounded
    (`max_held`, `max_uids`) and reloaded from the store when asked for more than it holds."""

    def __init__(self, query: Callable[[str], list[dict]], table: Callable[[str], str], window_seconds: int,
                 max_held: int | None = None, max_uids: int | None = None):
        self.query, self.table, self.window_seconds = query, table, window_seconds
        self.max_held = max_held or _bound("NETVIGIL_MAX_HELD_VERDICTS", MAX_HELD)
        self.max_uids = max_uids or _bound("NETVIGIL_MAX_HELD_UIDS", MAX_UIDS)
        self.windows: dict[str, CountryWindow] = {}
        self.floors: dict[str, str] = {}  # country -> time before which its incidents are final (bounded memory)
        self.latest: dict[str, str] = {}
        self.incidents: dict[str, dict[str, Incident]] = {}
        self.status: dict[tuple, StatusCell] | None = None  # (cc, asn, service) -> its cell
        self._keys: dict[str, list[tuple]] = {}  # country -> its keys of `status`, in order
        self._keys_of: dict | None = None
        self._keys_n = 0
        self._added: list[tuple] = []  # keys new to the grid since its keys were last put in order
        self._moved: dict[str, set[tuple]] = {}  # country -> its cells written since its rows were built
        self._published: dict[str, CountryRows] = {}  # country -> its status rows as last built
        rows = self.query(f"SELECT toString(max(time)) AS t, count() AS n FROM {self.table('measurements')}")
        derived = [self.query(f"SELECT count() AS n FROM {self.table(name)}") for name in ("verdicts", "incidents")]
        # an empty store: everything it will hold passes through `note`, nothing is loaded
        self.born_empty = not any(r and int(r[0]["n"]) for r in [rows, *derived])
        self.lost: set[str] = set()  # countries whose held state was dropped: the store answers
        if self.born_empty:
            self.status = {}
        self.uids: dict[str, str] = {}  # uid -> the minute of its measurement time
        self.uid_days: dict[str, list[str]] = {}  # minute (YYYY-MM-DD HH:MM) -> its uids
        self.uid_floor, self.newest = "", ""
        if rows and int(rows[0]["n"]):
            self.uid_floor = queries.shift_time(rows[0]["t"], -window_seconds)
            rows = self.query(f"SELECT uid, toString(time) AS t FROM {self.table('measurements')} "
                              f"WHERE time >= toDateTime('{self.uid_floor}', 'UTC')")
            for r in rows:
                self.remember(r["uid"], r["t"])

    # ---- dedup ----------------------------------------------------------------------------
    def unknown_here(self, uid: str, time: str) -> bool | None:
        """False when `uid` is known; True when it is surely new; None: ask the store."""
        if uid in self.uids:
            return False
        t = queries._time(time)
        return True if _TIME.match(t) and t >= self.uid_floor else None

    def remember(self, uid: str, time: str) -> None:
        """A measurement now in the store. Days older than the window before the newest
        measurement are let go (memory stays bounded; the floor rises: the store answers)."""
        t = queries._time(time)
        if not _TIME.match(t) or t < self.uid_floor or uid in self.uids:
            return  # answered by the store
        minute = sys.intern(t[:16])  # one string per minute, not one per uid (65 bytes each)
        self.uids[uid] = minute
        held = self.uid_days.get(minute)
        if held is None:
            held = self.uid_days[minute] = []
        held.append(uid)
        if t > self.newest:
            new_day = t[:10] != self.newest[:10]
            self.newest = t
            # past the window and two days: let go of the days before the window
            if new_day and len({m[:10] for m in self.uid_days}) > self.window_seconds // 86400 + 2:
                self._let_go(queries.shift_time(t, -self.window_seconds)[:10] + " 00:00")
        if len(self.uids) > self.max_uids:
            keep = int(self.max_uids * SHRINK_TO)
            minutes = sorted(self.uid_days)
            n, i = len(self.uids), 0
            while i < len(minutes) - 1 and n > keep:  # (the newest minute stays whole)
                n -= len(self.uid_days[minutes[i]])
                i += 1
            self._let_go(minutes[i])

    def _let_go(self, first: str) -> None:
        """Forget the uids of minutes before `first` (YYYY-MM-DD HH:MM); the store answers for them."""
        for minute in [m for m in self.uid_days if m < first]:
            for uid in self.uid_days.pop(minute):
                del self.uids[uid]
        self.uid_floor = max(self.uid_floor, first + ":00")

    # ---- verdicts as they are written -----------------------------------------------------
    def note(self, verdicts: list[Verdict], fresh: set[str]) -> None:
        """Verdicts just written (in write order; a uid's later verdict replaces the earlier);
        `fresh`: uids of the measurements new in this batch (each counted once in status)."""
        counted: set[str] = set()
        for v in verdicts:
            v = stored_form(v)
            t, cc = v.measurement_start_time, v.probe_cc
            if not _TIME.match(t):  # a time the store would not keep as is: read the store instead
                self.forget(cc)
                self.status = None
                continue
            w = self.windows.get(cc)
            if w is None and self.born_empty and cc not in self.lost:
                w = self.windows[cc] = CountryWindow("")
                self.latest[cc] = t
                self.incidents.setdefault(cc, {})
            if w is not None:
                w.put(v)
            if cc in self.latest and t > self.latest[cc]:
                self.latest[cc] = t
            if self.status is not None and v.path == "direct" and v.service:
                key = (cc, v.probe_asn, v.service)
                cur = self.status.get(key)
                if cur is None:
                    cur = self.status[key] = StatusCell()
                    self._added.append(key)
                if t > cur.time or (t == cur.time and v.measurement_uid <= cur.uid):
                    cur.time, cur.uid, cur.klass = t, v.measurement_uid, v.klass
                    cur.technique, cur.network_name = v.technique or "", v.probe_network_name or ""
                if v.measurement_uid in fresh and v.measurement_uid not in counted:
                    counted.add(v.measurement_uid)
                    cur.measurements += 1
                moved = self._moved.get(cc)
                if moved is None:
                    moved = self._moved[cc] = set()
                moved.add(key)
        if sum(len(w.by_uid) for w in self.windows.values()) > self.max_held:
            self.shrink()

    def shrink(self) -> None:
        """Past `max_held`: each country keeps its share of SHRINK_TO x max_held, newest first,
        and its floor rises to where its window now starts (see the module docstring)."""
        total = sum(len(w.by_uid) for w in self.windows.values())
        for cc, w in self.windows.items():
            keep = int(len(w.by_uid) * self.max_held * SHRINK_TO / max(total, 1))
            cut = w.bound(keep)
            if cut is not None:
                self.floors[cc] = floor = max(self.floors.get(cc, ""), cut)
                self._let_go_final(cc, floor)

    def _let_go_final(self, cc: str, floor: str) -> None:
        """Forget COUNTRY's incidents that ended before its floor: final, and in the store (a
        refresh starts at the floor and only carries on what overlaps it; status links only
        ongoing ones). Held, every closed incident of hours of load was walked each refresh."""
        held = self.incidents.get(cc)
        if held:
            for iid in [iid for iid, i in held.items() if i.end is not None and i.end < floor]:
                del held[iid]

    def floor(self, cc: str) -> str:
        """The time before which COUNTRY's incidents are final ("" when nothing was let go)."""
        return self.floors.get(cc, "")

    def forget(self, cc: str) -> None:
        self.lost.add(cc)
        self.windows.pop(cc, None)
        self.latest.pop(cc, None)

    def drop(self) -> None:
        """After a failed write: nothing held can be trusted to match the store."""
        self.lost.update(self.windows)
        self.lost.update(self.incidents)
        self.windows.clear()
        self.latest.clear()
        self.incidents.clear()
        self.born_empty = False

    # ---- refresh inputs -------------------------------------------------------------------
    def latest_time(self, cc: str) -> str | None:
        if cc not in self.latest:
            rows = self.query(f"SELECT toString(max(time)) AS t, count() AS n FROM {self.table('verdicts')} "
                              f"WHERE cc = {sql_str(cc)}")
            if not rows or not int(rows[0]["n"]):
                return None
            self.latest[cc] = rows[0]["t"]
        return self.latest[cc]

    def verdicts(self, cc: str, since: str) -> list[Verdict]:
        """COUNTRY's verdicts from `since` on (never before its floor: not held, and final)."""
        since = max(since, self.floor(cc))
        w = self.windows.get(cc)
        if w is None or since < w.since:
            rows = self.query(f"SELECT * FROM {self.table('verdicts')} FINAL WHERE cc = {sql_str(cc)} "
                              f"AND time >= toDateTime({sql_str(since)}, 'UTC') ORDER BY time ASC, uid")
            w = self.windows[cc] = CountryWindow(since)
            for r in rows:
                w.put(queries.verdict_from_row(r))
        return w.ordered(since)

    def series(self, cc: str, since: str) -> dict[tuple, list[Verdict]]:
        """`verdicts(cc, since)` grouped by series (CountryWindow.series), for the refresh."""
        since = max(since, self.floor(cc))
        w = self.windows.get(cc)
        if w is None or since < w.since:
            self.verdicts(cc, since)
            w = self.windows[cc]
        return w.series(since)

    def country_incidents(self, cc: str) -> dict[str, Incident]:
        if cc not in self.incidents:
            rows = self.query(f"SELECT body FROM {self.table('incidents')} FINAL WHERE country = {sql_str(cc)} "
                              f"ORDER BY start, id")
            self.incidents[cc] = {i.id: i for i in (msgspec.json.decode(r["body"], type=Incident) for r in rows)}
        return self.incidents[cc]

    # ---- status ---------------------------------------------------------------------------
    def _grid(self) -> dict[tuple, StatusCell]:
        """The status grid, loaded from the store when it is not held."""
        if self.status is None:
            self.status = {}
            rows = self.query(
                f"""SELECT cc, asn, service, toString(max(time)) AS t,
                       argMin(tuple(uid, class, technique, network_name), tuple(toUInt32(4294967295) - toUInt32(time), uid)) AS x,
                       count() AS n
                FROM {self.table('verdicts')} FINAL WHERE path = 'direct' AND service != '' GROUP BY cc, asn, service""")
            for r in rows:
                x = r["x"]
                x = [x[k] for k in sorted(x)] if isinstance(x, dict) else list(x)
                uid, klass, tech, name = x
                self.status[(r["cc"], r["asn"], r["service"])] = StatusCell(r["t"], uid, klass, tech, name, int(r["n"]))
        return self.status

    def status_rows(self, country: str | None, asn: str | None, service: str | None) -> list[dict]:
        self._grid()
        if asn:
            asn = queries.as_asn(asn)
        out = []
        for key in self._status_keys(country):
            cc, a, svc = key
            if (country and cc != country) or (asn and a != asn) or (service and service != "*" and svc != service):
                continue
            c = self.status[key]
            out.append({"cc": cc, "asn": a, "service": svc, "class": c.klass, "technique": c.technique, "last": c.time,
                        "n": c.measurements, "network_name": c.network_name})
        return out

    def country_rows(self, cc: str, ongoing: list[Incident]) -> list[StatusRow]:
        """COUNTRY's status rows with the ONGOING incidents that explain them: what
        queries.status_rows(status_rows(cc), ongoing) gives, kept between calls and patched:
        only the cells written since (and, when the incidents' spans moved, the cells of the
        networks whose span did) are built again; the others are the same objects as last
        time. Measured under a sustained load: a round built every changed country's whole
        grid (~3,400 rows) for the few hundred cells that moved."""
        grid = self._grid()
        keys = self._status_keys(cc)
        span_of = queries.incident_spans(ongoing)
        moved = self._moved.pop(cc, None) or set()
        held = self._published.get(cc)
        if held is None or held.grid is not grid:  # first asked, or the grid reloaded
            held = self._published[cc] = CountryRows(grid, span_of, {k: i for i, k in enumerate(keys)},
                                                     [_row(k, grid[k], span_of) for k in keys])
            return list(held.rows)
        if span_of != held.span_of:
            nets = {key[1] for key, _ in held.span_of.items() ^ span_of.items()}
            moved |= {k for k in keys if k[1] in nets}
            held.span_of = span_of
        rows, at = held.rows, held.at
        if len(rows) != len(keys):  # cells added (never removed): the others keep their rows
            held.rows = rows = [rows[at[k]] if k in at and k not in moved else _row(k, grid[k], span_of) for k in keys]
            held.at = {k: i for i, k in enumerate(keys)}
        else:
            for key in moved:
                rows[at[key]] = _row(key, grid[key], span_of)
        return list(rows)

    def _status_keys(self, country: str | None) -> list[tuple]:
        """The grid's keys in order, of one country or all: indexed by country, so the status
        of one country does not sort the whole grid (measured under a sustained load from 1,000
        networks: 17% of the analysis, one sort per country per round)."""
        grid = self.status
        assert grid is not None
        if self._keys_of is grid and self._added:  # keys added (never removed): each put in its place
            for key in self._added:
                bisect.insort(self._keys.setdefault(key[0], []), key)
            self._keys_n += len(self._added)
        self._added = []
        if self._keys_of is not grid or self._keys_n != len(grid):  # a grid (re)loaded
            by_cc: dict[str, list[tuple]] = {}
            for key in sorted(grid):
                by_cc.setdefault(key[0], []).append(key)
            self._keys, self._keys_of, self._keys_n = by_cc, grid, len(grid)
        if country:
            return self._keys.get(country, [])
        return [key for cc in sorted(self._keys) for key in self._keys[cc]]
