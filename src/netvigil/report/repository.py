"""The read repository the API, the dashboard, charts and alerts read through.

One class with typed methods; each builds a typed request (analysis/reads.py) and hands it
to `ask`, the transport the service chose (the pump's `read`, observatory/pump.py and
pump_process.py): the store read from a thread beside the writer, or a typed message to the
analysis process when only that process may open the store. Routes get it from `request.app.state.nv.reads`; nothing here
looks a method up by name.

Status is served from the live read model the analysis pump keeps (`live_status`, updated
after every round) and only before the first round asks the writer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from netvigil.analysis.reads import (AggregateQuery, IncidentById, IncidentCount, IncidentQuery, MeasurementByUid,
                                     MeasurementIndexQuery, MeasurementPage, ReadRequest, StatusQuery, StoreReads,
                                     VerdictCount, VerdictQuery)
from netvigil.model.records import AggregateRow, Incident, StatusRow, Verdict

Ask = Callable[[ReadRequest], Awaitable[Any]]


class ReadRepository:
    """Typed reads. `version()` moves whenever the analysis took in data (cache keys)."""

    def __init__(self, ask: Ask, *, live_status: Callable[[StatusQuery], list[StatusRow] | None] | None = None,
                 unconfirmed_status: Callable[[StatusQuery], list[StatusRow] | None] | None = None,
                 version: Callable[[], int] = lambda: 0):
        self._ask = ask
        self._live_status = live_status
        self._unconfirmed = unconfirmed_status
        self._version = version

    @property
    def analysed(self) -> int:
        """The analysis' progress counter: charts and told incidents are cached per value."""
        return self._version()

    def live_status(self, country: str | None = None, asn: str | None = None,
                    service: str | None = None) -> list[StatusRow] | None:
        """Status from the read model without waiting (None until the first round)."""
        if self._live_status is None:
            return None
        return self._live_status(StatusQuery(country=country, asn=asn, service=service))

    def unconfirmed_status(self, country: str | None = None, asn: str | None = None,
                           service: str | None = None) -> list[StatusRow]:
        """Status cells the quorum does not back (analysis/incidents/quorum.py): shown apart, never as the status."""
        if self._unconfirmed is None:
            return []
        return self._unconfirmed(StatusQuery(country=country, asn=asn, service=service)) or []

    async def status(self, country: str | None = None, asn: str | None = None,
                     service: str | None = None) -> list[StatusRow]:
        rows = self.live_status(country, asn, service)
        return rows if rows is not None else await self._ask(StatusQuery(country=country, asn=asn, service=service))

    async def verdicts(self, *, country: str | None = None, asn: str | None = None, service: str | None = None,
                       since: str | None = None, until: str | None = None, path: str | None = None,
                       limit: int | None = 100, offset: int = 0, order: str = "DESC") -> list[Verdict]:
        return await self._ask(VerdictQuery(country=country, asn=asn, service=service, since=since, until=until,
                                             path=path, limit=limit, offset=offset, order=order))

    async def verdict_count(self, *, country: str | None = None, asn: str | None = None, service: str | None = None,
                            since: str | None = None, until: str | None = None, path: str | None = None) -> int:
        return await self._ask(VerdictCount(country=country, asn=asn, service=service, since=since, until=until,
                                             path=path))

    async def aggregates(self, *, country: str | None = None, asn: str | None = None, service: str | None = None,
                         since: str | None = None, until: str | None = None, bucket: str = "1h",
                         path: str = "direct") -> list[AggregateRow]:
        return await self._ask(AggregateQuery(country=country, asn=asn, service=service, since=since, until=until,
                                               bucket=bucket, path=path))

    async def incidents(self, *, country: str | None = None, service: str | None = None,
                        ongoing: bool | None = None, since: str | None = None, until: str | None = None,
                        asn: str | None = None, technique: str | None = None,
                        newest_first: bool = False, limit: int | None = None, offset: int = 0,
                        unconfirmed: bool = False) -> list[Incident]:
        """`asn`/`technique`: those touching the network, using the technique (filtered in the
        store); `unconfirmed`: the incidents the quorum keeps unpublished instead (analysis/incidents/quorum.py)."""
        return await self._ask(IncidentQuery(country=country, service=service, ongoing=ongoing, since=since, until=until,
                                             asn=asn, technique=technique, newest_first=newest_first, limit=limit,
                                             offset=offset, unconfirmed=unconfirmed))

    async def incident_count(self, *, country: str | None = None, service: str | None = None,
                             ongoing: bool | None = None, since: str | None = None,
                             until: str | None = None, asn: str | None = None, technique: str | None = None) -> int:
        return await self._ask(IncidentCount(country=country, service=service, ongoing=ongoing, since=since, until=until,
                                             asn=asn, technique=technique))

    async def incident(self, id: str, *, unconfirmed: bool = False) -> Incident | None:
        """`unconfirmed`: also an incident the quorum keeps unpublished (a permalink answers it)."""
        return await self._ask(IncidentById(id=id, unconfirmed=unconfirmed))

    async def measurement_index(self, *, country: str | None = None, asn: str | None = None,
                                service: str | None = None, since: str | None = None, until: str | None = None,
                                test_name: str | None = None, path: str | None = None, limit: int = 100,
                                offset: int = 0) -> MeasurementPage:
        return await self._ask(MeasurementIndexQuery(country=country, asn=asn, service=service, since=since,
                                                     until=until, test_name=test_name, path=path, limit=limit,
                                                     offset=offset))

    async def measurement(self, uid: str) -> dict | None:
        return await self._ask(MeasurementByUid(uid=uid))


class LocalRepository(ReadRepository):
    """The repository over an AnalysedStore open in this process (the CLI: `netvigil report`,
    `netvigil export`): answered in line, status from the store's own state."""

    def __init__(self, store):
        reads: StoreReads = store.reads  # the AnalysedStore's own (status from its memory)

        async def ask(req: ReadRequest) -> Any:
            return reads.answer(req)

        super().__init__(ask)
