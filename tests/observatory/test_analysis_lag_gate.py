"""--max-analysis-lag: while the analysis is behind by more than the limit, untrusted submissions
get a 503 with Retry-After and nothing is stored; trusted probes pass; once a round reaches the
commits, submissions are taken again (issue #13: arrival-to-status stays bounded under overload)."""

from __future__ import annotations

import time

import msgspec
from fastapi.testclient import TestClient

from netvigil.observatory.analyser import RoundResult
from netvigil.observatory.app import create_app

LAG = 0.2


def line(i: int) -> bytes:
    return msgspec.json.encode({"test_name": "netvigil_service", "measurement_start_time": f"2026-12-06 10:00:{i:02d}",
                                "probe_cc": "RU", "probe_asn": "AS12389", "input": f"https://twitter.com/{i}",
                                "test_keys": {"i": i}})


def test_behind_analysis_defers_untrusted_submissions(tmp_path):
    # no lifespan: the analysis never runs a round, so it falls behind the first commit
    app = create_app(tmp_path, analysis_process=False, probe_tokens={"trusted-1"}, max_analysis_lag=LAG)
    nv = app.state.nv
    c = TestClient(app)
    try:
        assert c.post("/api/v1/submit", content=line(1)).status_code == 200  # nothing behind yet
        time.sleep(LAG * 2)
        assert nv.collector.analysis_lag(nv.pump.checkpoint) > LAG
        r = c.post("/api/v1/submit", content=line(2))
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert "behind" in r.json()["detail"] and nv.collector.stored == 1  # nothing stored
        rid = c.post("/report", json={"test_name": "netvigil_service"}).json()["report_id"]
        r = c.post(f"/report/{rid}", json={"format": "json", "content": msgspec.json.decode(line(3))})
        assert r.status_code == 503  # the OONI protocol's path too
        trusted = c.post("/api/v1/submit", content=line(4), headers={"Authorization": "Bearer trusted-1"})
        assert trusted.status_code == 200 and nv.collector.stored == 2
        # the analysis is down (a failed round, a dead process): intake goes on, it waits on no one
        nv.pump.error = "the analysis process stopped"
        assert c.post("/api/v1/submit", content=line(5)).status_code == 200 and nv.collector.stored == 3
        nv.pump.error = None
        assert c.post("/api/v1/submit", content=line(6)).status_code == 503
        # a round that reached the log's end: taken again
        nv.pump._apply(RoundResult(2, [], {}, checkpoint=nv.collector.log.end()))
        assert c.post("/api/v1/submit", content=line(2)).status_code == 200 and nv.collector.stored == 4
        assert nv.collector.stats["deferred"] == 3
    finally:
        nv.collector.close()


def test_without_the_option_nothing_is_deferred(tmp_path):
    app = create_app(tmp_path, analysis_process=False)
    nv = app.state.nv
    c = TestClient(app)
    try:
        assert c.post("/api/v1/submit", content=line(1)).status_code == 200
        time.sleep(LAG * 2)
        assert c.post("/api/v1/submit", content=line(2)).status_code == 200 and nv.collector.stored == 2
    finally:
        nv.collector.close()
