"""Admin and trusted-probe endpoints refuse requests without a valid token; rate limits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from netvigil.observatory.app import create_app
from netvigil.errors import ConfigError

M = {"test_name": "netvigil_service", "measurement_start_time": "2022-02-26 09:00:00", "probe_cc": "RU",
     "probe_asn": "AS12389", "test_keys": {}}


@pytest.fixture
def strict(tmp_path):
    app = create_app(tmp_path, analysis=False, admin_token="admin-secret", probe_tokens={"probe-1"},
                     require_probe_token=True, allow_private_webhooks=True)
    with TestClient(app) as c:
        yield c


def test_admin_endpoints_need_the_admin_token(strict):
    for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 403),
                            ({"Authorization": "Bearer probe-1"}, 403)):
        assert strict.get("/api/v1/admin/subscriptions", headers=headers).status_code == status
        r = strict.post("/api/v1/admin/subscriptions", json={"url": "http://127.0.0.1:9/x"}, headers=headers)
        assert r.status_code == status and "token" in r.json()["detail"]
        assert strict.get("/api/v1/admin/stats", headers=headers).status_code == status
    ok = {"Authorization": "Bearer admin-secret"}
    r = strict.post("/api/v1/admin/subscriptions", json={"url": "http://127.0.0.1:9/x", "secret": "s"}, headers=ok)
    assert r.status_code == 200
    listed = strict.get("/api/v1/admin/subscriptions", headers=ok).json()
    assert [s["url"] for s in listed] == ["http://127.0.0.1:9/x"] and listed[0]["signed"]
    assert "secret" not in listed[0]
    assert strict.delete(f"/api/v1/admin/subscriptions/{listed[0]['id']}", headers={}).status_code == 401
    assert strict.delete(f"/api/v1/admin/subscriptions/{listed[0]['id']}", headers=ok).status_code == 200


def test_trusted_probe_only_collector(strict):
    assert strict.post("/report", json={}).status_code == 401
    assert strict.post("/report", json={}, headers={"Authorization": "Bearer nope"}).status_code == 403
    assert strict.post("/api/v1/submit", content=b"{}", headers={"X-Netvigil-Token": "nope"}).status_code == 403
    h = {"Authorization": "Bearer probe-1"}
    rid = strict.post("/report", json={}, headers=h).json()["report_id"]
    assert strict.post(f"/report/{rid}", json={"format": "json", "content": M}).status_code == 401
    r = strict.post(f"/report/{rid}", json={"format": "json", "content": M}, headers=h)
    assert r.status_code == 200 and r.json()["measurement_uid"]


def test_admin_disabled_without_configured_token(tmp_path):
    with TestClient(create_app(tmp_path, analysis=False)) as c:
        r = c.get("/api/v1/admin/stats", headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_untrusted_probe_is_rate_limited_trusted_is_not(tmp_path):
    app = create_app(tmp_path, analysis=False, rate_per_second=0.001, rate_burst=3, probe_tokens={"t"})
    with TestClient(app) as c:
        rid = c.post("/report", json={}).json()["report_id"]
        codes = [c.post(f"/report/{rid}", json={"format": "json", "content": dict(M, input=str(i))}).status_code
                 for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = c.post(f"/report/{rid}", json={"format": "json", "content": M}, headers={"Authorization": "Bearer t"})
        assert r.status_code == 200


def test_unknown_setting_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="max_body"):
        create_app(tmp_path, max_body=1)
