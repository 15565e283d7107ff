"""The live analysis' memory: what `refresh()` and `status()` would otherwise re-read from the
store on every round (measured: re-reading and decoding the 3-day window of verdicts per
country per refresh, a GROUP BY ... FINAL per status read, one uid query per batch).

Held here, all derived from the store and (re)loaded from it on demand, so a restart or a
request for older data than is held falls back to the store:
- `uid_days`: the measurement uids from `uid_floor` on (dedup of a batch without a query; a
  measurement older than the floor is looked up in the store);
- per country, the verdicts of its refresh window as the store returns them (one per uid,
  the last judgement wins, as ReplacingMergeTree keeps the last insert), from `since` on;
- per (country, asn, service), the latest direct verdict and the count (the status grid;
  latest = greatest time, then smallest uid, as argMax meets them in key order);
- per country, its incidents;
- per country, the latest verdict time (the refresh horizon).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Callable

import msgspec

from netvigil.analysis import queries
from netvigil.model import times
from netvigil.model.records import Incident, Verdict
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


@dataclass
class CountryWindow:
    since: str  # every verdict of the country with time >= since is in by_uid
    by_uid: dict[str, Verdict] = field(default_factory=dict)
    _sorted: list[Verdict] | None = None

    def put(self, v: Verdict) -> None:
        if v.measurement_start_time >= self.since:
            self.by_uid[v.measurement_uid] = v
            self._sorted = None

    def ordered(self, since: str) -> list[Verdict]:
        """Verdicts from `since` on, ordered as the store's ORDER BY time, uid."""
        if self._sorted is None:
            self._sorted = sorted(self.by_uid.values(), key=_ORDER)
        if since <= self.since:
            return self._sorted
        lo, hi = 0, len(self._sorted)
        while lo < hi:  # first verdict at or after `since`
            mid = (lo + hi) // 2
            if self._sorted[mid].measurement_start_time < since:
                lo = mid + 1
            else:
                hi = mid
        return self._sorted[lo:]

    def prune(self, since: str) -> None:
        """Let go of verdicts before `since`, once it moved an hour (not on every refresh:
        a pass over the whole window each time cost 8% of a refresh under load)."""
        if since > self.since and (not _TIME.match(self.since) or queries.shift_time(self.since, PRUNE_STEP) <= since):
            self.since = since
            if self._sorted is not None:
                self._sorted = self.ordered(since)
            self.by_uid = {u: v for u, v in self.by_uid.items() if v.measurement_start_time >= since}


class LiveState:
    def __init__(self, query: Callable[[str], list[dict]], table: Callable[[str], str], window_seconds: int):
        self.query, self.t, self.window_seconds = query, table, window_seconds
        self.windows: dict[str, CountryWindow] = {}
        self.latest: dict[str, str] = {}
        self.incidents: dict[str, dict[str, Incident]] = {}
        self.status: dict[tuple, list] | None = None  # key -> [time, uid, class, technique, network_name, n]
        rows = self.query(f"SELECT toString(max(time)) AS t, count() AS n FROM {self.t('measurements')}")
        derived = [self.query(f"SELECT count() AS n FROM {self.t(name)}") for name in ("verdicts", "incidents")]
        # an empty store: everything it will hold passes through `note`, nothing is loaded
        self.born_empty = not any(r and int(r[0]["n"]) for r in [rows, *derived])
        self.lost: set[str] = set()  # countries whose held state was dropped: the store answers
        if self.born_empty:
            self.status = {}
        self.uid_days: dict[str, set[str]] = {}  # day -> uids of that day's measurements
        self.uid_floor, self.newest = "", ""
        if rows and int(rows[0]["n"]):
            self.uid_floor = queries.shift_time(rows[0]["t"], -window_seconds)
            rows = self.query(f"SELECT uid, toString(time) AS t FROM {self.t('measurements')} "
                              f"WHERE time >= toDateTime('{self.uid_floor}', 'UTC')")
            for r in rows:
                self.remember(r["uid"], r["t"])

    # ---- dedup ----------------------------------------------------------------------------
    def unknown_here(self, uid: str, time: str) -> bool | None:
        """False when `uid` is known; True when it is surely new; None: ask the store."""
        if any(uid in day for day in self.uid_days.values()):
            return False
        t = queries._time(time)
        return True if _TIME.match(t) and t >= self.uid_floor else None

    def remember(self, uid: str, time: str) -> None:
        """A measurement now in the store. Days older than the window before the newest
        measurement are let go (memory stays bounded; the floor rises: the store answers)."""
        t = queries._time(time)
        if not _TIME.match(t) or t < self.uid_floor:
            return  # answered by the store
        day = self.uid_days.get(t[:10])
        if day is None:
            day = self.uid_days[t[:10]] = set()
        day.add(uid)
        if t > self.newest:
            self.newest = t
            if len(self.uid_days) > self.window_seconds // 86400 + 2:
                first = queries.shift_time(t, -self.window_seconds)[:10]
                for d in [d for d in self.uid_days if d < first]:
                    del self.uid_days[d]
                self.uid_floor = max(self.uid_floor, first + " 00:00:00")

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
                    cur = self.status[key] = ["", "", "", "", "", 0]
                if t > cur[0] or (t == cur[0] and v.measurement_uid <= cur[1]):
                    cur[:5] = [t, v.measurement_uid, v.klass, v.technique or "", v.probe_network_name or ""]
                if v.measurement_uid in fresh and v.measurement_uid not in counted:
                    counted.add(v.measurement_uid)
                    cur[5] += 1

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
            rows = self.query(f"SELECT toString(max(time)) AS t, count() AS n FROM {self.t('verdicts')} "
                              f"WHERE cc = {sql_str(cc)}")
            if not rows or not int(rows[0]["n"]):
                return None
            self.latest[cc] = rows[0]["t"]
        return self.latest[cc]

    def verdicts(self, cc: str, since: str) -> list[Verdict]:
        w = self.windows.get(cc)
        if w is None or since < w.since:
            rows = self.query(f"SELECT * FROM {self.t('verdicts')} FINAL WHERE cc = {sql_str(cc)} "
                              f"AND time >= toDateTime({sql_str(since)}, 'UTC') ORDER BY time ASC, uid")
            w = self.windows[cc] = CountryWindow(since)
            for r in rows:
                w.put(queries.verdict_from_row(r))
        return w.ordered(since)

    def country_incidents(self, cc: str) -> dict[str, Incident]:
        if cc not in self.incidents:
            rows = self.query(f"SELECT body FROM {self.t('incidents')} FINAL WHERE country = {sql_str(cc)} "
                              f"ORDER BY start, id")
            self.incidents[cc] = {i.id: i for i in (msgspec.json.decode(r["body"], type=Incident) for r in rows)}
        return self.incidents[cc]

    # ---- status ---------------------------------------------------------------------------
    def status_rows(self, country: str | None, asn: str | None, service: str | None) -> list[dict]:
        if self.status is None:
            self.status = {}
            rows = self.query(
                f"""SELECT cc, asn, service, toString(max(time)) AS t,
                       argMin(tuple(uid, class, technique, network_name), tuple(toUInt32(4294967295) - toUInt32(time), uid)) AS x,
                       count() AS n
                FROM {self.t('verdicts')} FINAL WHERE path = 'direct' AND service != '' GROUP BY cc, asn, service""")
            for r in rows:
                x = r["x"]
                x = [x[k] for k in sorted(x)] if isinstance(x, dict) else list(x)
                self.status[(r["cc"], r["asn"], r["service"])] = [r["t"], *x, int(r["n"])]
        if asn:
            asn = queries.as_asn(asn)
        out = []
        for key in sorted(self.status):
            cc, a, svc = key
            if (country and cc != country) or (asn and a != asn) or (service and service != "*" and svc != service):
                continue
            t, _, klass, tech, name, n = self.status[key]
            out.append({"cc": cc, "asn": a, "service": svc, "class": klass, "technique": tech, "last": t, "n": n,
                        "network_name": name})
        return out

