"""The incident filters by network and technique (analysis/reads.py, the `asns`/`techniques`
columns of store/schema.py) answer the same on a ClickHouse server (Debian's 18.16 when
nothing newer is at hand) as on embedded chdb, and a server store made before the columns
existed gets them on opening (ALTER TABLE ADD COLUMN, rows written again from their bodies).

The recorded russia-2022 run (tests/recorded_store.py: its raw archive, from which each
store derives its tables on opening). The chdb side and the pages: tests/report/test_network_reads.py.
"""

from __future__ import annotations

from pathlib import Path

from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.analysis.reads import IncidentQuery
from tests.store.chserver import drop, server_db
from tests.recorded_store import copy_of_run_store

RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022"


def answers(obs: AnalysedStore) -> dict:
    """Every network and technique filter (and a page of each), as incident ids and counts."""
    every = obs.reads.incidents(IncidentQuery())
    nets = sorted({n.asn for i in every for n in i.networks}) + ["AS64511"]
    ids = {t for i in every for t in [*i.techniques, *(n.technique for n in i.networks if n.technique)]}
    techs = sorted(ids | {t.split(".", 1)[0] for t in ids}) + ["tls.no_such_thing"]
    out = {}
    for asn in [*nets, None]:
        for tech in [*techs, None]:
            q = IncidentQuery(country="RU", asn=asn, technique=tech)
            out[asn, tech] = ([i.id for i in obs.reads.incidents(q)], obs.reads.incident_count(q.count()),
                              [i.id for i in obs.reads.incidents(IncidentQuery(asn=asn, technique=tech,
                                                                               newest_first=True, limit=1, offset=1))])
    return out


def test_network_and_technique_filters_agree_on_chdb_and_server(tmp_path, clickhouse_url):
    copy_of_run_store(RUN, tmp_path / "chdb")
    with AnalysedStore(tmp_path / "chdb") as obs:
        want = answers(obs)
    # not trivial: a network in only some incidents, a technique in only some
    assert len({len(v[0]) for v in want.values()}) >= 3 and want["AS64511", None] == ([], 0, [])
    url = server_db(clickhouse_url)
    try:
        copy_of_run_store(RUN, tmp_path / "server")
        with AnalysedStore(tmp_path / "server", engine=url) as obs:  # derived from the raw archive on opening
            assert answers(obs) == want
            for table in ("incidents", "unconfirmed_incidents"):  # the tables as an older version made them
                obs.db.execute(f"ALTER TABLE {obs.table(table)} DROP COLUMN asns")
                obs.db.execute(f"ALTER TABLE {obs.table(table)} DROP COLUMN techniques")
        with AnalysedStore(tmp_path / "server", engine=url) as obs:
            assert answers(obs) == want
    finally:
        drop(url)
