"""The batch submission's fast path (collector/fast_path.py): POST /api/v1/submit skips the app's
routing and answers what the routed endpoint answers, errors included. Two apps over two data
dirs, one without the layer, take the same requests; every answer is compared byte for byte."""

from __future__ import annotations

import msgspec
from fastapi.testclient import TestClient

from netvigil.collector.fast_path import FastPath
from netvigil.observatory.app import create_app

SETTINGS = dict(analysis=False, fsync=False, rate_per_second=1.0, rate_burst=30.0)


def line(i: int, **extra) -> bytes:
    return msgspec.json.encode({"test_name": "netvigil_service", "measurement_start_time": "2026-12-06 10:00:00",
                                "probe_cc": "RU", "probe_asn": "AS12389", "input": f"https://twitter.com/{i}",
                                "test_keys": {"i": i}, **extra})


REQUESTS = [  # (method, path, body, headers)
    ("POST", "/api/v1/submit", b"\n".join(line(i) for i in range(3)), {}),
    ("POST", "/api/v1/submit", b"\n".join(line(i) for i in range(3)), {}),  # the same again: duplicates
    ("POST", "/api/v1/submit", line(10) + b"\n{not json\n" + line(11), {}),  # line 2 named
    ("POST", "/api/v1/submit", line(12, probe_cc="Russia"), {}),  # a field's bound
    ("POST", "/api/v1/submit", b"\n \n", {}),  # empty
    ("POST", "/api/v1/submit", b"\xff\xfe" + line(13), {}),  # not UTF-8
    ("POST", "/api/v1/submit", line(14), {"Authorization": "Bearer nvp_000000000000000000000000:wrong"}),  # no such probe
    ("POST", "/api/v1/submit", b"\n".join(line(20 + i) for i in range(31)), {}),  # past the burst
    ("GET", "/api/v1/submit", b"", {}),  # not this path's method: routed (405)
]


def test_the_fast_path_answers_as_the_routed_endpoint(tmp_path, monkeypatch):
    fast = create_app(tmp_path / "fast", **SETTINGS)
    routed = create_app(tmp_path / "routed", **SETTINGS)
    routed.user_middleware = [m for m in routed.user_middleware
                             if not (m.cls is FastPath and m.kwargs["path"] == "/api/v1/submit")]
    seen = []
    original = type(fast.router).__call__

    async def counting(self, scope, receive, send):  # what the fast app's router sees
        if self is fast.router and scope["type"] == "http":
            seen.append((scope["method"], scope["path"]))
        await original(self, scope, receive, send)

    monkeypatch.setattr(type(fast.router), "__call__", counting)
    answers = {}
    for name, app in (("fast", fast), ("routed", routed)):
        with TestClient(app) as c:
            answers[name] = [(r.status_code, r.headers.get("content-type"), r.headers.get("retry-after"), r.content)
                             for r in (c.request(m, p, content=b, headers=h) for m, p, b, h in REQUESTS)]
            if name == "fast":
                metrics = c.get("/metrics").text
    statuses = [a[0] for a in answers["fast"]]
    assert statuses == [200, 200, 400, 400, 400, 400, 401, 413, 405], statuses
    assert b"line 2" in answers["fast"][2][3] and b"empty" in answers["fast"][4][3]
    assert answers["fast"] == answers["routed"]  # status, type, Retry-After and body, byte for byte
    assert seen == [("GET", "/api/v1/submit"), ("GET", "/metrics")]  # no submission reached the router
    assert all(f'status="{n}"' in metrics for n in (400, 401, 413))  # counted by the app's own handler
