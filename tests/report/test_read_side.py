"""The typed read side (issue #16): reads are typed requests answered beside the writer.

On the recorded russia-2022 run (tests/data/lab/russia-2022, written by the AnalysedStore
as `netvigil demo` does):
- chdb really locks its directory to one process (why the analysis process answers reads
  for an embedded store rather than a second reader process);
- typed reads agree with the recorded files and with each other (pages, counts,
  aggregates), and the SQL window and paging of incidents select exactly what the API's
  filter selects;
- in thread mode a read is answered while the store thread is busy (beside the writer,
  not queued behind a round); in process mode over typed messages; anything else sent as
  a read is refused;
- the incident list reads one page and the country page only the incidents of its window.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import msgspec
import pytest

from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.analysis.reads import AggregateQuery, IncidentQuery, MeasurementIndexQuery, StatusQuery, VerdictQuery
from netvigil.analysis.verdicts.engine import line_with_uid
from netvigil.model.measurement import measurement_to_dict
from netvigil.observatory.app import create_app
from netvigil.report import dashboard, read_http
from netvigil.report.replay import load_run
from netvigil.report.repository import LocalRepository, ReadRepository
from tests.conftest import ready_client
from tests.report.incident_filter import incident_filter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_report_cli import RUN, fill_with_run  # noqa: E402

enc = msgspec.json.encode


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("readside")
    fill_with_run(d / "store")
    return d


def run(coro):
    return asyncio.run(coro)


def test_chdb_locks_its_directory_to_one_process(store_dir):
    """A second process cannot open a store that one process has open (so no second reader
    process on chdb: the writer process answers)."""
    probe = ("import sys\nfrom chdb import session\ntry:\n    session.Session(sys.argv[1])\n"
             "except Exception as exc:\n    print('refused:', exc)\nelse:\n    print('opened')\n")
    with AnalysedStore(store_dir / "store") as obs:
        assert obs.incidents()
        out = subprocess.run([sys.executable, "-c", probe, str(store_dir / "store" / "chdb")],
                             capture_output=True, text=True, timeout=300)
    assert out.stdout.startswith("refused:"), out.stdout + out.stderr[-500:]


def test_typed_reads_agree_with_the_recording_and_each_other(store_dir):
    """Checked against the recorded files and across different queries (AnalysedStore's own
    read methods are these same requests now, so comparing with them would prove nothing)."""
    ms = load_run(RUN)
    for m in ms:
        line_with_uid(m, None)  # the uid the store gives a measurement that came without one
    recorded = {m.measurement_uid: m for m in ms}
    with AnalysedStore(store_dir / "store") as obs:
        repo = LocalRepository(obs)
        q = {"country": "RU", "service": "twitter", "since": "2022-02-26 09:00:00", "until": "2022-02-26 13:00:00"}
        every = run(repo.verdicts(**q, path="any", limit=None))
        assert every and all(v.probe_cc == "RU" and v.service == "twitter"
                             and q["since"] <= v.measurement_start_time[:19] < q["until"] for v in every)
        assert all(v.measurement_uid in recorded for v in every)
        pages = [run(repo.verdicts(**q, path="any", limit=7, offset=o)) for o in range(0, len(every) + 7, 7)]
        assert [v.measurement_uid for p in pages for v in p] == [v.measurement_uid for v in every]
        assert run(repo.verdict_count(**q, path="any")) == len(every)
        direct = [v for v in every if v.path == "direct"]
        aggs = run(repo.aggregates(**q, bucket="30m"))  # the direct path, counted by another query
        assert sum(a.total for a in aggs) == len(direct) == run(repo.verdict_count(**q, path="direct"))

        ru = sorted((m for m in recorded.values() if m.probe_cc == "RU"),
                    key=lambda m: (m.measurement_start_time, m.measurement_uid), reverse=True)
        page = run(repo.measurement_index(country="RU", limit=7, offset=3))
        assert page.total == len(ru) and [r.uid for r in page.rows] == [m.measurement_uid for m in ru[3:10]]
        uid = page.rows[0].uid
        assert run(repo.measurement(uid)) == measurement_to_dict(recorded[uid])

        incs = run(repo.incidents())
        assert len(incs) >= 3 and [(i.start, i.id) for i in incs] == sorted((i.start, i.id) for i in incs)
        assert run(repo.incident(incs[-1].id)) == incs[-1] and run(repo.incident("no-such-id")) is None
        ended = run(repo.incidents(ongoing=False))
        assert ended and all(i.end for i in ended) and {i.id for i in ended} < {i.id for i in incs}
        status = run(repo.status(country="RU"))
        assert status and {(r.asn, r.service) for r in status} >= {(v.probe_asn, v.service) for v in direct}


def test_incident_window_and_pages_select_what_the_api_filter_selects(store_dir):
    with AnalysedStore(store_dir / "store") as obs:
        repo = LocalRepository(obs)
        every = obs.incidents()
        times = sorted({t for i in every for t in (i.start, i.end) if t})
        windows = [(None, None), (times[0], None), (None, times[-1])]
        windows += [(a, b) for a in times for b in times if a < b]
        for since, until in windows:
            want = incident_filter(every, None, None, since, until)
            got = run(repo.incidents(since=since, until=until))
            assert [i.id for i in got] == [i.id for i in want], (since, until)
            assert run(repo.incident_count(since=since, until=until)) == len(want)
        shown = sorted(every, key=lambda i: i.start, reverse=True)  # the order the pages list them in
        pages = [run(repo.incidents(newest_first=True, limit=2, offset=o)) for o in range(0, len(every) + 2, 2)]
        assert [i.id for p in pages for i in p] == [i.id for i in shown]


def test_a_read_is_answered_while_the_store_thread_is_busy(store_dir):
    """Thread mode: the store thread is held; a verdict read still returns (reads run beside
    the writer on their own threads, not queued behind the analysis round)."""
    app = create_app(store_dir, analysis_process=False, analysis_interval=0.2)
    with ready_client(app) as c:
        pump = app.state.nv.pump
        release, held = threading.Event(), threading.Event()

        def hold():
            held.set()
            release.wait(120)  # bounded: a read queued behind this would return only after it
            return release.is_set()

        blocker = pump.exec.submit(hold)
        held.wait(60)
        try:
            r = c.get("/api/v1/verdicts", params={"country": "RU", "limit": 3})
            busy = not blocker.done()
        finally:
            release.set()
        assert r.status_code == 200 and len(r.json()["results"]) == 3
        assert busy, "the read waited for the store thread"
        assert blocker.result() is True


def test_process_mode_reads_are_typed_messages(store_dir):
    app = create_app(store_dir, analysis_interval=0.2)
    with ready_client(app) as c:
        nv = app.state.nv

        async def ask():
            got = await nv.pump.read(VerdictQuery(country="RU", path="direct", limit=5))
            status = await nv.pump.read(StatusQuery(country="RU"))
            with pytest.raises(RuntimeError, match="not a read request"):
                await nv.pump.read(("verdicts", {"country": "RU"}))  # the old untyped call
            for _ in range(5):  # a reader that goes away (a client disconnects) mid-read
                gone = asyncio.ensure_future(nv.pump.read(VerdictQuery(country="RU", limit=1000)))
                await asyncio.sleep(0)
                gone.cancel()
            # the answers to the cancelled reads arrive and are dropped; reads still work
            # (bounded wait: a dead pipe reader would leave this read unanswered)
            again = await asyncio.wait_for(nv.pump.read(VerdictQuery(country="RU", path="direct", limit=5)), 120)
            assert msgspec.to_builtins(again) == msgspec.to_builtins(got)
            # the requests that inherit the filters (analysis/reads.py) cross the pipe with them
            every = await nv.pump.read(VerdictQuery(country="RU", service="twitter", path="direct", limit=None))
            assert await nv.pump.read(VerdictQuery(country="RU", service="twitter", path="direct").count()) == len(every)
            buckets = await nv.pump.read(AggregateQuery(country="RU", service="twitter", bucket="1h"))
            assert every and sum(b.total for b in buckets) == len(every)  # AggregateQuery's path: direct
            page = await nv.pump.read(MeasurementIndexQuery(country="RU", service="twitter", path="direct", limit=3))
            assert page.total == len(every) and len(page.rows) == 3
            incidents = await nv.pump.read(IncidentQuery(country="RU"))
            assert incidents and await nv.pump.read(IncidentQuery(country="RU").count()) == len(incidents)
            return got, status

        got, status = c.portal.call(ask)
        listed = c.get("/api/v1/verdicts", params={"country": "RU", "limit": 5}).json()["results"]
        assert len(got) == 5 and msgspec.to_builtins(got) == listed
        assert status and {r.country for r in status} == {"RU"}


class Counting(ReadRepository):
    """The app's repository, counting the incidents each request read."""

    def __init__(self, inner: ReadRepository):
        self.inner, self.read_incidents = inner, 0
        super().__init__(inner._ask, live_status=inner._live_status, version=inner._version)

    async def incidents(self, **kw):
        rows = await self.inner.incidents(**kw)
        self.read_incidents += len(rows)
        return rows


async def no_prerender(app) -> None:
    """The charts drawn ahead read incidents too: not counted as a page's reads here."""


def test_pages_read_only_what_they_show(store_dir, monkeypatch):
    monkeypatch.setattr(dashboard, "INCIDENTS_PAGE", 2)
    monkeypatch.setattr(read_http, "prerender", no_prerender)
    app = create_app(store_dir, analysis_interval=0.2)
    with ready_client(app) as c:
        nv = app.state.nv
        every = c.get("/api/v1/incidents").json()["results"]
        assert len(every) >= 3
        inner = nv.reads
        nv.reads = counting = Counting(inner)
        ids = []
        for off in range(0, len(every), 2):
            counting.read_incidents = 0
            page = c.get("/incidents", params={"offset": off, "fragment": 1})
            assert page.status_code == 200 and counting.read_incidents <= 2
            assert f"{len(every)} incidents match" in page.text
            ids += [s.split("'", 1)[0] for s in page.text.split("data-id='")[1:]]
        assert sorted(ids) == sorted(i["id"] for i in every) and len(set(ids)) == len(ids)
        assert "rel=next" in c.get("/incidents", params={"fragment": 1}).text

        # a country page over the window of its first incident reads the incidents overlapping it only
        cc = every[0]["country"]
        mine = c.portal.call(lambda: inner.incidents(country=cc))
        first = min(i.start for i in mine)
        until = first[:15] + "0"  # floor to 10 minutes, then the bucket holding `first` ends 10 min later
        hh, mm = int(until[11:13]), int(until[14:16]) + 10
        until = f"{until[:11]}{hh + mm // 60:02d}:{mm % 60:02d}"
        since = f"{until[:11]}{int(until[11:13]) - 2:02d}:{until[14:16]}"
        want = incident_filter(mine, None, None, since + ":00", until + ":00")
        assert 0 < len(want) < len(mine)
        counting.read_incidents = 0
        page = c.get(f"/country/{cc}", params={"since": since, "until": until, "fragment": 1})
        assert page.status_code == 200 and all(i.id in page.text for i in want)
        assert counting.read_incidents == len(want)
