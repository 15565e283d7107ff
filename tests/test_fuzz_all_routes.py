"""Every route of the service (collector, read API, admin, dashboard, docs), enumerated from
app.routes, fuzzed with hypothesis: odd path segments, query strings and raw byte bodies.
No input may give a 500 (issue #14). Derandomised, with a fixed budget per route.

Webhook subscriptions are fuzzed without the admin token (a 401 before any work): with it,
fuzzed URLs would be resolved, and these tests never look up names outside loopback.
"""

from __future__ import annotations

import json
import re
import tempfile
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netvigil.observatory.app import create_app
from tests.conftest import ready_client

ADMIN = "fuzz-admin-token"
MEASUREMENT = {
    "test_name": "web_connectivity", "measurement_start_time": "2022-02-26 09:00:00", "probe_cc": "RU",
    "probe_asn": "AS12389", "input": "https://twitter.com/", "annotations": {"service": "twitter"},
    "test_keys": {"queries": [], "requests": [], "tcp_connect": []},
}


def all_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route, walking included routers."""
    def walk(routes):
        for r in routes:
            if hasattr(r, "original_router"):
                yield from walk(r.original_router.routes)
            elif hasattr(r, "path"):
                yield r
    out = []
    for r in walk(app.routes):
        for method in sorted(getattr(r, "methods", None) or ["GET"]):
            if method != "HEAD":
                out.append((method, r.path))
    return sorted(set(out))


def _query_names(app) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for path, ops in app.openapi().get("paths", {}).items():
        for op in ops.values():
            names.setdefault(path, []).extend(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")
    return names


_probe_app = create_app(tempfile.mkdtemp(prefix="nv-routes-"), analysis=False)
ROUTES = all_routes(_probe_app)
QUERY_NAMES = _query_names(_probe_app)
PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["RU", "AS12389", "AS１２３８９", "RU\n", "twitter", "2022-02-26", "2022-13-45 99:99:99",
                     "9999-12-31", "1h", "0m", "-1", "0", "99999999999999999999", "1e309", "NaN", "csv", "parquet",
                     "jsonl", "true", "%00", "..", "../../etc/passwd", "'; DROP TABLE verdicts; --", "\x00",
                     "\ud7ff", "a" * 3000, "svg", "png", "direct", "vpn"]),
)
bodies = st.one_of(
    st.binary(max_size=600),
    st.sampled_from([b"", b"{}", b"[]", b"null", b"\xff\xfe", b'{"format":"json","content":{}}',
                     json.dumps(MEASUREMENT).encode(), json.dumps(MEASUREMENT).encode().replace(b"RU", b"R\xc3"),
                     b'{"format":"json","content":' + json.dumps(MEASUREMENT).encode() + b"}",
                     b"\n".join([json.dumps(MEASUREMENT).encode()] * 3), b"[" * 5000, b'{"a":' * 3000]),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("all-routes"), analysis_interval=0.1, admin_token=ADMIN,
                     rate_per_second=1e6, rate_burst=1e6)
    with ready_client(app) as c:
        c.post("/api/v1/submit", content=json.dumps(MEASUREMENT).encode())
        c.report_id = c.post("/report", json={"test_name": "web_connectivity"}).json()["report_id"]
        yield c


def test_routes_are_enumerated():
    paths = {p for _, p in ROUTES}
    assert {"/report/{report_id}", "/api/v1/submit", "/api/v1/status", "/api/v1/quarantine",
            "/country/{cc}", "/api/v1/health", "/metrics"} <= paths
    assert len(ROUTES) >= 25


@pytest.mark.parametrize("method,template", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_input_gives_a_500(client, method, template, data):
    def segment(name: str) -> str:
        if name == "report_id" and data.draw(st.booleans(), label="real report"):
            return client.report_id
        return quote(data.draw(odd_text.filter(lambda s: s not in ("", ".", "..")), label=name), safe="")

    path = PARAM.sub(lambda mt: segment(mt.group(1)), template)
    names = QUERY_NAMES.get(template, []) + ["x", "format", "limit"]
    params = data.draw(st.dictionaries(st.sampled_from(names), odd_text, max_size=4), label="params")
    headers = {}
    if "/admin/subscriptions" not in template and data.draw(st.booleans(), label="admin"):
        headers["Authorization"] = f"Bearer {ADMIN}"
    if data.draw(st.booleans(), label="odd content type"):
        headers["Content-Type"] = data.draw(st.sampled_from(["application/json", "text/plain", "x/\x7f", ""]))
    body = data.draw(bodies, label="body") if method in ("POST", "PUT", "PATCH", "DELETE") else None
    r = client.request(method, path, params=params, content=body, headers=headers)
    assert r.status_code < 500, (method, path, params, body[:200] if body else None, r.status_code, r.text[:300])
