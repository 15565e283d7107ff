"""Read API and dashboard with hostile query parameters, analysis on: 4xx or 200, never a 500."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netvigil.observatory.app import create_app
from tests.conftest import ready_client

PATHS = ["/api/v1/status", "/api/v1/verdicts", "/api/v1/aggregates", "/api/v1/incidents", "/api/v1/measurements"]
PARAMS = ["country", "asn", "service", "since", "until", "bucket", "limit", "offset", "format", "ongoing",
          "probe_cc", "probe_asn", "test_name"]
values = st.one_of(st.text(max_size=40), st.sampled_from(["RU", "AS12389", "twitter", "2022-02-26", "1h", "0m", "-1",
                                                          "0", "99999999999", "csv", "true", "2022-02-26 09:00",
                                                          "'; DROP TABLE verdicts; --", "%00", "..", "1e9"]))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with ready_client(create_app(tmp_path_factory.mktemp("api"), analysis_interval=0.1)) as c:
        yield c


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), params=st.dictionaries(st.sampled_from(PARAMS), values, max_size=4))
def test_api_never_500(client, path, params):
    r = client.get(path, params=params)
    assert r.status_code < 500, (path, params, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.json()["detail"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segment=st.text(min_size=1, max_size=60).filter(lambda s: s not in (".", "..")))
def test_pages_and_ids_never_500(client, segment):
    for template in ("/country/{}", "/incident/{}", "/api/v1/incidents/{}", "/api/v1/measurement/{}",
                     "/api/v1/incidents/{}/chart.svg"):
        r = client.get(template.format(quote(segment, safe="")))
        assert r.status_code < 500, (template, segment, r.status_code, r.text[:300])


@pytest.mark.parametrize("suffix", ["", "/chart.svg"])
def test_an_incident_and_its_chart_refuse_alike(client, suffix):
    """One lookup for the incident and its chart (report/api.incident_by_id): a malformed id is
    a 400 naming it, an unknown one a 404 naming it."""
    bad = client.get(f"/api/v1/incidents/{quote('a b', safe='')}{suffix}")
    assert bad.status_code == 400 and "'a b' is malformed" in bad.json()["detail"]
    unknown = client.get(f"/api/v1/incidents/RU-twitter-nothing{suffix}")
    assert unknown.status_code == 404 and "'RU-twitter-nothing' not found" in unknown.json()["detail"]
