"""Open reports of the OONI protocol, bounded per client and in time.

A report is opened by POST /report and lives in memory until closed. Unbounded, 10,000 opens
with 63 KB of metadata each cost 470 MB for good. So: the metadata body is capped (routes),
each client address may hold `per_client` open reports, a report idle (no submission) for
`idle_seconds` expires, and past `max_reports` in all the least recently used is forgotten.
A client at its cap gets a 429 whose Retry-After is when its oldest report expires.

`Reports` is a mapping report_id -> {"open", "meta", "count", "client", "last"} kept in
order of last activity, so expiry only looks at its front.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from netvigil.collector.intake import Rejected
from netvigil.collector.quota import OverQuota


class Reports(OrderedDict):
    """The open reports, report_id -> its state, in order of last activity (module docstring),
    capped per client, in all and in idle time."""

    def __init__(self, per_client: int = 128, idle_seconds: float = 12 * 3600, max_reports: int = 100_000,
                 clock=time.monotonic):
        super().__init__()
        self.per_client, self.idle_seconds, self.max_reports = per_client, idle_seconds, max_reports
        self.clock = clock
        self.expired = 0
        self._open_by_client: dict[str, OrderedDict[str, None]] = {}

    def add(self, report_id: str, meta: dict, client: str | None) -> None:
        """Record a new open report of CLIENT (None: a trusted probe, not capped per client)."""
        now = self.clock()
        self.expire(now)
        mine = self._open_by_client.get(client) if client is not None else None
        if mine is not None and len(mine) >= self.per_client:
            oldest = self[next(iter(mine))]["last"]
            raise OverQuota(f"{client} has {len(mine)} open reports (limit {self.per_client}); close one "
                            f"with POST /report/ID/close or wait until one expires",
                            oldest + self.idle_seconds - now)
        self[report_id] = {"open": True, "meta": meta, "count": 0, "client": client, "last": now}
        if client is not None:
            self._open_by_client.setdefault(client, OrderedDict())[report_id] = None
        while len(self) > self.max_reports:
            self._forget(next(iter(self)))

    def touch(self, report_id: str) -> None:
        """A submission to the report: it is active again."""
        report = self[report_id]
        report["last"] = self.clock()
        self.move_to_end(report_id)
        mine = self._open_by_client.get(report["client"])
        if mine is not None and report_id in mine:
            mine.move_to_end(report_id)

    def close(self, report_id: str) -> int:
        report = self.get(report_id)
        if report is None:
            raise Rejected(f"report {report_id!r} is unknown", 404)
        report["open"] = False
        self._unlist(report_id, report)
        return report["count"]

    def expire(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        while self:
            report_id = next(iter(self))
            if now - self[report_id]["last"] <= self.idle_seconds:
                break
            self._forget(report_id)
            self.expired += 1

    def _forget(self, report_id: str) -> None:
        self._unlist(report_id, self.pop(report_id))

    def _unlist(self, report_id: str, report: dict) -> None:
        mine = self._open_by_client.get(report["client"])
        if mine is not None:
            mine.pop(report_id, None)
            if not mine:
                del self._open_by_client[report["client"]]
