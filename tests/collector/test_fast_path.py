"""The check-in's fast path (collector/fast_path.py, the class that also serves the batches) on a
real observatory on loopback: it skips the app's routing, and answers exactly what the routed
endpoint answers, errors included (a NetvigilError too, not only a Rejected)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from netvigil.collector.fast_path import FastPath
from netvigil.collector.fleet import Fleet
from netvigil.errors import ConfigError, StoreError
from netvigil.observatory.app import create_app
from netvigil.observatory.serve import ObservatoryThread


@pytest.fixture()
def observatory(tmp_path, monkeypatch):
    with ObservatoryThread(tmp_path / "obs", analysis=False, rate_per_second=1.0, rate_burst=3.0) as srv:
        routed = []
        top = srv.app.router
        original = type(top).__call__

        async def counting(self, scope, receive, send):  # every request the app's router sees
            if self is top:
                routed.append(scope["path"])
            await original(self, scope, receive, send)

        monkeypatch.setattr(type(top), "__call__", counting)
        yield srv, routed


def test_check_in_skips_the_routing_with_the_routed_answers(observatory):
    srv, routed = observatory
    with httpx.Client(base_url=srv.url) as c:
        e = c.post("/api/v1/probes/enrol").json()
        ok = c.post("/api/v1/check-in", headers={"Authorization": e["authorization"]},
                    json={"software_name": "netvigil-agent"})
        assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
        body = ok.json()
        assert body["probe_id"] == e["probe_id"] and body["services"] and body["probe_asn"] == "AS0"
        assert routed == ["/api/v1/probes/enrol"]  # the check-in never reached the router

        # errors: the app's Rejected handler, as routed (status, one-line detail, Retry-After)
        wrong = c.post("/api/v1/check-in", headers={"Authorization": f"Bearer {e['probe_id']}:nope"}, json={})
        assert wrong.status_code == 401 and e["probe_id"] in wrong.json()["detail"]
        bad = c.post("/api/v1/check-in", content=b"[1,2")
        assert bad.status_code == 400 and wrong.json()["detail"] and "check-in body" in bad.json()["detail"]
        big = c.post("/api/v1/check-in", content=b"{" + b" " * 5000 + b"}")
        assert big.status_code == 413 and "over the limit" in big.json()["detail"]
        limited = [c.post("/api/v1/check-in", json={}).status_code for _ in range(6)]
        assert 429 in limited
        assert routed == ["/api/v1/probes/enrol"]

        # other methods and paths go on to the router unchanged
        assert c.get("/api/v1/check-in").status_code == 405
        assert c.get("/api/v1/health").status_code == 200
        assert routed[1:] == ["/api/v1/check-in", "/api/v1/health"]
        metrics = c.get("/metrics").text
        assert 'status="401"' in metrics and 'status="413"' in metrics  # counted as the handler counts them


@pytest.mark.parametrize("error", [ConfigError("IP-to-ASN table unreadable", where="asn.tsv"),
                                   StoreError("probe registry unreadable", where="probes.jsonl")])
def test_a_netvigil_error_in_the_check_in_gets_the_routed_answer(tmp_path, monkeypatch, error):
    """Any exception the app has a handler for (here its NetvigilError handler: 400 or 500 with a
    one-line detail) is answered by that handler, as routing would, not as a bare 500."""
    def failing(self, probe, address, body):
        raise error

    monkeypatch.setattr(Fleet, "check_in", failing)
    fast = create_app(tmp_path / "fast", analysis=False)
    routed = create_app(tmp_path / "routed", analysis=False)
    routed.user_middleware = [m for m in routed.user_middleware
                              if not (m.cls is FastPath and m.kwargs["path"] == "/api/v1/check-in")]
    assert len(routed.user_middleware) == len(fast.user_middleware) - 1
    answers = []
    for app in (fast, routed):
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.post("/api/v1/check-in", json={"software_name": "netvigil-agent"})
            answers.append((r.status_code, r.headers.get("content-type"), r.content))
    assert answers[0] == answers[1]
    status, kind, body = answers[0]
    assert status == (400 if isinstance(error, ConfigError) else 500) and kind == "application/json"
    assert str(error).encode() in body
