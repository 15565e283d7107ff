"""The same SQL on embedded chdb and on a ClickHouse server (Debian's 18.16 when nothing newer
is at hand) gives identical verdicts, aggregates, status, incidents and change events.

The workload is real: the recorded lab run russia-2022 (tests/data/lab) plus OONI's 50
web_connectivity QA measurements, fed half in one batch and half in collector-sized batches,
with a refresh in between (so the per-refresh incident DELETE runs on both engines).
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.errors import StoreError
from netvigil.ingest.ooni import read_measurements
from netvigil.model.measurement import decode_measurement
from netvigil.store.server import ServerEngine
from tests.store.chserver import drop, server_db

LAB_RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022" / "measurements.jsonl.zst"


@pytest.fixture(scope="module")
def workload(third_party):
    lab = sorted(read_measurements([LAB_RUN]), key=lambda m: m.measurement_start_time)
    qa_dir = third_party / "ooni-probe-cli-minipipeline" / "generated"
    qa = [decode_measurement((d / "measurement.json").read_bytes(), where=str(d))
          for d in sorted(qa_dir.iterdir()) if (d / "measurement.json").exists()]
    assert len(lab) > 300 and len(qa) == 50
    return lab, qa


def run(engine: str, data_dir: Path, workload) -> dict:
    lab, qa = workload
    lab = [msgspec.structs.replace(m) for m in lab]  # each run assigns uids on its own copies
    qa = [msgspec.structs.replace(m) for m in qa]
    b = msgspec.to_builtins
    with AnalysedStore(data_dir, engine=engine) as o:
        half = len(lab) // 2
        o.add(lab[:half])
        events = o.refresh()
        for i in range(half, len(lab), 40):
            o.add(lab[i : i + 40])
        o.add(qa)
        events += o.refresh()
        out = {
            "events": [b(e) for e in events],
            "verdicts": b(o.verdicts(limit=None)),
            "page": b(o.verdicts(country="RU", limit=25, offset=30)),
            "agg_1h": b(o.aggregates(bucket="1h")),
            "agg_10m": b(o.aggregates(country="RU", service="twitter", bucket="10m")),
            "agg_1d": b(o.aggregates(bucket="1d")),
            "status": b(o.status()),
            "status_ru": b(o.status(country="RU")),
            "incidents": b(o.incidents()),
            "ongoing": b(o.incidents(ongoing=True)),
            "one": b(o.incident(o.incidents()[0].id)),
        }
        out["rebuilt"] = o.rebuild()
        out["after_rebuild"] = (b(o.verdicts(limit=None)), b(o.incidents()))
    return out


@pytest.mark.slow
def test_same_workload_same_results_on_chdb_and_server(tmp_path, workload, clickhouse_url):
    url = server_db(clickhouse_url)
    try:
        on_chdb = run("chdb", tmp_path / "chdb", workload)
        on_server = run(url, tmp_path / "server", workload)
    finally:
        drop(url)
    # the workload is not trivial: incidents start and end, several countries and classes
    assert {e["event"] for e in on_chdb["events"]} >= {"start", "end"}
    assert len(on_chdb["incidents"]) >= 2 and len(on_chdb["verdicts"]) > 350
    assert len({v["class"] for v in on_chdb["verdicts"]}) >= 4
    assert len({s["country"] for s in on_chdb["status"]}) >= 2
    assert len(on_chdb["page"]) == 25
    for key in on_chdb:
        assert on_server[key] == on_chdb[key], key


def test_server_engine_reads_writes_and_deletes(clickhouse_url):
    url = server_db(clickhouse_url)
    e = ServerEngine(url)
    try:
        assert e.database.startswith("nv_test_")
        e.execute(f"CREATE TABLE {e.database}.t (k String, c LowCardinality(String), n UInt64, "
                  f"a Array(String), x Nullable(Float64), t DateTime('UTC')) ENGINE = MergeTree ORDER BY k")
        e.insert("t", [{"k": "a", "c": "x", "n": 2**40, "a": ["p", "q"], "x": None, "t": "2022-03-01 09:00:00"},
                       {"k": "b", "c": "y", "n": 1, "a": [], "x": 0.5, "t": "2022-03-01 10:00:00"}])
        rows = e.query(f"SELECT k, c, n, a, x, toString(t) AS t FROM {e.database}.t ORDER BY k")
        assert rows[0] == {"k": "a", "c": "x", "n": 2**40, "a": ["p", "q"], "x": None, "t": "2022-03-01 09:00:00"}
        e.execute(f"DELETE FROM {e.database}.t WHERE c = 'x'")  # a mutation on servers without DELETE
        assert [r["k"] for r in e.query(f"SELECT k FROM {e.database}.t")] == ["b"]
        with pytest.raises(StoreError, match="query failed: .*nope"):
            e.query(f"SELECT nope FROM {e.database}.t")
    finally:
        e.execute(f"DROP DATABASE IF EXISTS {e.database}")
        e.close()


def _no_uids(incident: dict) -> dict:
    ev = dict(incident["evidence"])
    ev["measurement_uids"] = len(ev["measurement_uids"])
    # who backs it (analysis/incidents/quorum.py): counted for what probes submit, not for the operator's own data
    for k in ("independent_probes", "source_networks", "trusted"):
        ev.pop(k, None)
    return {**incident, "evidence": ev}


@pytest.mark.slow
def test_served_observatory_on_the_server_matches_chdb(tmp_path, clickhouse_url):
    """`netvigil serve --clickhouse-url`: probes submit the lab run over HTTP, the analysis
    process writes to the server; the API's incidents equal those of a chdb Observatory
    (but for the sample uids in the evidence: the collector assigns its own uids)."""
    import time

    import httpx

    import asyncio

    from netvigil.probe.client import submit_measurements
    from netvigil.report.api import told_rows
    from netvigil.report.enrich import StoreReader
    from tests.recorded_run import run_measurements
    from netvigil.observatory.serve import ObservatoryThread

    ms = run_measurements(LAB_RUN.parent)  # load_run's, decoded once per test process
    with AnalysedStore(tmp_path / "chdb") as o:
        o.add([msgspec.structs.replace(m) for m in ms])
        o.refresh()
        # as the API publishes them (measured rates, as_of), told from the chdb store
        published = asyncio.run(told_rows(StoreReader(o), o.incidents()))
        want = [_no_uids({k: v for k, v in i.items() if k != "text"}) for i in published]
    url = server_db(clickhouse_url)
    try:
        with ObservatoryThread(tmp_path / "served", engine=url, analysis_interval=0.2, probe_tokens={"p"}) as srv:
            assert submit_measurements(srv.url, ms, token="p").submitted == len(ms)
            deadline = time.monotonic() + 90
            poll = httpx.Client()  # one client for every poll: httpx.get() builds an SSL context each call
            while time.monotonic() < deadline:
                health = poll.get(f"{srv.url}/api/v1/health").json()
                if health["analysed"] >= len(ms) or health["analysis"] != "running" and health["analysed"]:
                    break
                time.sleep(0.1)
            assert health["analysis"] == "running" and health["analysed"] == len(ms), health
            got = []
            while time.monotonic() < deadline and got != want:  # the last refresh may be a round behind
                got = [_no_uids({k: v for k, v in i.items() if k != "text"})
                       for i in poll.get(f"{srv.url}/api/v1/incidents").json()["results"]]
                time.sleep(0.2)
            poll.close()
            parquet = httpx.get(f"{srv.url}/api/v1/incidents", params={"format": "parquet"}, timeout=120)  # the first imports pyarrow
    finally:
        drop(url)
    assert want and got == want
    assert parquet.status_code == 200 and parquet.content[:4] == b"PAR1"


def test_user_and_password_in_the_url(clickhouse_url):
    """Basic auth from the URL (every server version reads it); a wrong password is one line."""
    import os

    from tests.store.chserver import PASSWORD, USER

    if os.environ.get("NETVIGIL_CLICKHOUSE_URL"):
        pytest.skip("the test user exists only on the temporary server")
    hostport = clickhouse_url.split("//", 1)[1].rstrip("/")
    e = ServerEngine(f"http://{USER}:{PASSWORD}@{hostport}/?database=nv_test_auth")
    try:
        # (18.16 has no currentUser(): the running query names its user)
        rows = e.query("SELECT DISTINCT user AS u FROM system.processes WHERE query LIKE '%nv-auth-check%'")
        assert rows == [{"u": USER}]
    finally:
        e.execute("DROP DATABASE IF EXISTS nv_test_auth")
        e.close()
    with pytest.raises(StoreError) as err:
        ServerEngine(f"http://{USER}:wrong@{hostport}/")
    assert "\n" not in str(err.value) and "wrong" not in str(err.value) and hostport in str(err.value)


def test_cli_export_from_a_store_on_the_server(tmp_path, workload, clickhouse_url):
    """`netvigil export --clickhouse-url`: the tables are read from the server (in-process
    through the entry point's main(); test_export.py runs the installed command)."""
    import asyncio
    import json

    from netvigil.report.api import told_rows
    from netvigil.report.enrich import StoreReader
    from tests.clirun import run_cli

    url = server_db(clickhouse_url)
    try:
        with AnalysedStore(tmp_path / "srv", engine=url) as o:
            o.add([msgspec.structs.replace(m) for m in workload[0]])  # the lab run, read once per module
            o.refresh()
            want = [{k: v for k, v in i.items() if k != "text"}  # as published: rates, as_of
                    for i in asyncio.run(told_rows(StoreReader(o), o.incidents()))]
        out = tmp_path / "incidents.jsonl"
        r = run_cli("export", "incidents", "--store", tmp_path / "srv", "--clickhouse-url", url, "--format", "jsonl",
                    "--out", out)
    finally:
        drop(url)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert want and [{k: v for k, v in g.items() if k != "text"} for g in got] == want
    assert not (tmp_path / "srv" / "chdb").exists()  # nothing was read from an embedded store
