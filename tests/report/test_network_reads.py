"""Incidents filtered by network and technique in the store (issue #16: the dashboard reads
only what a page shows).

A network and a technique are inside an incident's body; the incident tables keep them
beside it (`asns`, `techniques`: store/schema.py), so IncidentQuery's `asn`/`technique`
select and page in the store. On the recorded russia-2022 run (tests/recorded_store.py):
- for every network, technique and technique class, the store's selection (and its pages
  and counts) is the one the old way made: every incident of the country, kept in Python
  (tests/report/incident_filter.py, the filter the pages and the API used before);
- the network page lists the same incidents as before and the only incident read it sends
  carries its network (the typed requests it sends are recorded), reading no other
  incident; the incident list and the API page their asn/technique filters in the store;
- a store made before these columns existed still opens: they are added and filled from
  the stored bodies.
The same SQL on a ClickHouse server: tests/store/test_incident_filters_server.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.analysis.reads import IncidentCount, IncidentQuery
from netvigil.observatory.app import create_app
from netvigil.report import dashboard, read_http
from netvigil.report.repository import ReadRepository
from tests.conftest import ready_client
from tests.report.incident_filter import incident_filter
from tests.recorded_store import copy_of_run_store

RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("network-reads")
    copy_of_run_store(RUN, d / "store")
    return d


def techniques_of(incidents) -> set[str]:
    """Every technique id the incidents name and each id's class (`tls` of `tls.x`)."""
    ids = {t for i in incidents for t in [*i.techniques, *(n.technique for n in i.networks if n.technique)]}
    return ids | {t.split(".", 1)[0] for t in ids}


def ids(incidents) -> list[str]:
    return [i.id for i in incidents]


def test_the_store_selects_what_the_python_filter_selected(data_dir):
    with AnalysedStore(data_dir / "store") as obs:
        every = obs.reads.incidents(IncidentQuery())
        nets = sorted({n.asn for i in every for n in i.networks})
        techs = sorted(techniques_of(every))
        # not trivial: networks in some incidents but not all, techniques of several classes
        assert len(every) >= 3 and len(nets) >= 2 and len({t.split(".")[0] for t in techs}) >= 2
        assert any(0 < len(incident_filter(every, a, None, None, None)) < len(every) for a in nets)
        for cc in sorted({i.country for i in every}) + [None]:
            mine = [i for i in every if cc is None or i.country == cc]
            for asn in [*nets, "AS64511", None]:  # AS64511: a network in no incident
                for tech in [*techs, "tls.no_such_thing", None]:
                    want = incident_filter(mine, asn, tech, None, None)
                    q = IncidentQuery(country=cc, asn=asn, technique=tech)
                    assert ids(obs.reads.incidents(q)) == ids(want), (cc, asn, tech)
                    assert obs.reads.incident_count(q.count()) == len(want), (cc, asn, tech)
        # pages of a network's incidents, newest first, are its list cut in the store
        asn = max(nets, key=lambda a: len(incident_filter(every, a, None, None, None)))
        want = sorted(incident_filter(every, asn, None, None, None), key=lambda i: i.start, reverse=True)
        assert len(want) >= 2
        pages = [obs.reads.incidents(IncidentQuery(asn=asn, newest_first=True, limit=1, offset=o))
                 for o in range(len(want) + 1)]
        assert [i.id for p in pages for i in p] == ids(want)


class Recording(ReadRepository):
    """The app's repository, keeping every typed request a page sends (and what incidents
    came back)."""

    def __init__(self, inner: ReadRepository):
        self.sent: list = []
        self.incidents_read = 0

        async def ask(req):
            self.sent.append(req)
            got = await inner._ask(req)
            if isinstance(req, IncidentQuery):
                self.incidents_read += len(got)
            return got

        super().__init__(ask, live_status=inner._live_status, unconfirmed_status=inner._unconfirmed,
                         version=inner._version)

    def take(self, kind) -> list:
        out = [r for r in self.sent if isinstance(r, kind)]
        self.sent, self.incidents_read = [], 0
        return out


async def no_prerender(app) -> None:
    """The charts drawn ahead read incidents too: not a page's reads."""


def listed(html: str) -> list[str]:
    return [s.split("'", 1)[0] for s in html.split("data-id='")[1:]]


def test_pages_and_api_send_the_network_filter(data_dir, monkeypatch):
    monkeypatch.setattr(read_http, "prerender", no_prerender)
    app = create_app(data_dir, analysis_interval=0.2)  # the analysis process: requests cross its pipe
    with ready_client(app) as c:
        nv = app.state.nv
        inner = nv.reads
        status = c.portal.call(lambda: inner.status())
        nets = sorted({r.asn for r in status})
        every = c.portal.call(lambda: inner.incidents())
        assert len(nets) >= 2 and any(len(i.networks) < len(nets) for i in every)
        nv.reads = rec = Recording(inner)
        shown = 0
        for asn in nets:
            cc = next(r.country for r in status if r.asn == asn)  # the country the page reads
            # the old way: every incident of its country, its network's kept in Python
            before = [i for i in c.portal.call(lambda: inner.incidents(country=cc)) if asn in {n.asn for n in i.networks}]
            rec.take(object)
            page = c.get(f"/network/{asn}", params={"fragment": 1})
            assert page.status_code == 200, page.text[:300]
            assert listed(page.text) == ids(sorted(before, key=lambda i: i.start, reverse=True)), asn  # as listed
            sent = [r for r in rec.sent if isinstance(r, IncidentQuery)]
            read = rec.incidents_read
            assert sent == [IncidentQuery(country=cc, asn=asn)] and read == len(before), (asn, sent)
            rec.take(object)
            shown += len(before)
        assert shown > 0  # some network page lists incidents

        # /incidents?asn=&technique=: counted and paged in the store, one page read
        asn = max(nets, key=lambda a: len(incident_filter(every, a, None, None, None)))
        for tech in [None, *sorted(techniques_of(every))]:
            want = sorted(incident_filter(every, asn, tech, None, None), key=lambda i: i.start, reverse=True)
            params = {"asn": asn, "fragment": 1, **({"technique": tech} if tech else {})}
            page = c.get("/incidents", params=params)
            assert page.status_code == 200 and f"{len(want)} incident" in page.text, (tech, page.text[:300])
            assert listed(page.text) == ids(want)[:dashboard.INCIDENTS_PAGE]
            sent = [r for r in rec.sent if isinstance(r, (IncidentQuery, IncidentCount))]
            rec.take(object)
            assert {type(r) for r in sent} == {IncidentQuery, IncidentCount}, sent
            assert all(r.asn == asn and r.technique == tech for r in sent), sent
            assert [r.limit for r in sent if isinstance(r, IncidentQuery)] == [dashboard.INCIDENTS_PAGE], sent

        # the API's asn/technique: the same filter, in the store, paged there
        for tech in [None, *sorted(techniques_of(every))]:
            want = incident_filter(every, asn, tech, None, None)
            got, off = [], 0
            while True:
                body = c.get("/api/v1/incidents", params={"asn": asn, "limit": 2, "offset": off,
                                                          **({"technique": tech} if tech else {})}).json()
                assert body["metadata"]["total"] == len(want), tech
                got += [i["id"] for i in body["results"]]
                if not body["metadata"]["next_url"]:
                    break
                off += 2
            assert got == ids(want), tech
            sent = [r for r in rec.sent if isinstance(r, (IncidentQuery, IncidentCount))]
            rec.take(object)
            assert {type(r) for r in sent} == {IncidentQuery, IncidentCount}, sent
            assert all(r.asn == asn and r.technique == tech for r in sent), sent
            assert all(r.limit == 2 for r in sent if isinstance(r, IncidentQuery)), sent
        bad = c.get("/api/v1/incidents", params={"asn": "not-a-network"})
        assert bad.status_code == 400 and "asn" in bad.text


def test_a_store_made_before_the_columns_opens_and_filters(tmp_path):
    """The columns dropped (the tables as an older version made them), the store opens: they
    are added and filled from the stored bodies, and the filters answer as before."""
    copy_of_run_store(RUN, tmp_path / "store")
    with AnalysedStore(tmp_path / "store") as obs:
        every = obs.reads.incidents(IncidentQuery())
        for table in ("incidents", "unconfirmed_incidents"):
            obs.db.execute(f"ALTER TABLE {obs.table(table)} DROP COLUMN asns")
            obs.db.execute(f"ALTER TABLE {obs.table(table)} DROP COLUMN techniques")
        with pytest.raises(Exception, match="asns|Missing columns|Unknown"):
            obs.reads.incidents(IncidentQuery(asn="AS12389"))
    with AnalysedStore(tmp_path / "store") as obs:
        assert ids(obs.reads.incidents(IncidentQuery())) == ids(every)
        for asn in sorted({n.asn for i in every for n in i.networks}):
            for tech in [None, *sorted(techniques_of(every))]:
                want = incident_filter(every, asn, tech, None, None)
                assert ids(obs.reads.incidents(IncidentQuery(asn=asn, technique=tech))) == ids(want), (asn, tech)
        # written again once, not at every opening
        versions = obs.db.query(f"SELECT id, version FROM {obs.table('incidents')} FINAL ORDER BY id")
    with AnalysedStore(tmp_path / "store") as obs:
        assert obs.db.query(f"SELECT id, version FROM {obs.table('incidents')} FINAL ORDER BY id") == versions
