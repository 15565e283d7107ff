"""Hostile, malformed, oversized and wrongly typed submissions: always a 4xx, never a 500.

Runs the real app in-process (Starlette's TestClient) with hypothesis generating bodies;
after every example the collector must still accept a valid measurement.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netvigil.observatory.app import create_app

VALID = {
    "test_name": "web_connectivity", "measurement_start_time": "2022-02-26 09:00:00", "probe_cc": "RU",
    "probe_asn": "AS12389", "probe_ip": "192.0.2.7", "input": "https://twitter.com/",
    "test_keys": {"queries": [], "requests": [], "client_resolver": "192.0.2.7"}, "annotations": {"service": "twitter"},
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(tmp_path_factory.mktemp("fuzz"), analysis=False, max_body_bytes=64 << 10,
                     max_batch_bytes=256 << 10, rate_per_second=1e6, rate_burst=1e6)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.report_id = c.post("/report", json={"test_name": "web_connectivity"}).json()["report_id"]
        yield c


def still_serving(client) -> None:
    r = client.post(f"/report/{client.report_id}", json={"format": "json", "content": VALID})
    assert r.status_code == 200, r.text
    assert r.json()["measurement_uid"]


def assert_4xx(r) -> None:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.json()["detail"]  # names the problem


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=st.binary(max_size=300))
def test_random_bytes(client, body):
    for path in (f"/report/{client.report_id}", "/api/v1/submit", "/report"):
        r = client.post(path, content=body)
        if path == "/report" and r.status_code == 200:
            continue  # an empty or {} body opens a report, as OONI's does
        assert_4xx(r)


@FUZZ
@given(field=st.sampled_from(sorted(VALID) + ["report_id", "annotations", "test_runtime"]), value=json_values)
def test_wrongly_typed_field(client, field, value):
    content = dict(VALID, **{field: value})
    r = client.post(f"/report/{client.report_id}", json={"format": "json", "content": content})
    if r.status_code == 200:  # some values are valid (e.g. input null, any test_keys dict)
        assert r.json()["measurement_uid"]
    else:
        assert_4xx(r)


@FUZZ
@given(envelope=json_values)
def test_wrong_envelope(client, envelope):
    r = client.post(f"/report/{client.report_id}", content=json.dumps(envelope))
    assert_4xx(r)


@FUZZ
@given(report_id=st.text(min_size=1, max_size=80).filter(lambda s: s not in (".", "..") and "/" not in s))
def test_hostile_report_ids(client, report_id):
    r = client.post(f"/report/{quote(report_id, safe='')}", json={"format": "json", "content": VALID})
    assert r.status_code in (400, 404, 405), r.status_code


HOSTILE = [
    b'{"format":"json","content":' + b"[" * 50000 + b"]" * 50000 + b"}",  # nesting bomb
    b'{"format":"json","content":' + json.dumps(dict(VALID, input="x" * 70000)).encode() + b"}",  # oversized
    b'{"format":"xml","content":{}}',
    b'{"format":"json","content":' + json.dumps(dict(VALID, measurement_start_time="2022-02-26T09:00:00Z")).encode() + b"}",
    b'{"format":"json","content":' + json.dumps(dict(VALID, probe_cc="../../etc")).encode() + b"}",
    b'{"format":"json","content":' + json.dumps(dict(VALID, probe_asn="12389")).encode() + b"}",
    b'{"format":"json","content":{"test_name":"web_connectivity"}}',
    b'{"format":"json","content":{"measurement_start_time":"2022-02-26 09:00:00","test_name":NaN}}',
    b"\xff\xfe\x00{}",
    b'{"format":"json","content":"' + b"A" * 1000 + b'"}',
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_bodies(client, body):
    assert_4xx(client.post(f"/report/{client.report_id}", content=body))
    still_serving(client)


def test_oversized_is_413_and_names_the_limit(client):
    r = client.post(f"/report/{client.report_id}", content=b"x" * (70 << 10))
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = client.post("/api/v1/submit", content=b"x" * (300 << 10))
    assert r.status_code == 413


def test_batch_names_the_bad_line_and_stores_nothing(client):
    before = len(client.app.state.nv.collector.index)
    good = json.dumps(dict(VALID, input="https://a.example/")).encode()
    bad = json.dumps(dict(VALID, probe_cc=7)).encode()
    r = client.post("/api/v1/submit", content=good + b"\n" + bad + b"\n")
    assert r.status_code == 400 and "line 2" in r.json()["detail"] and "probe_cc" in r.json()["detail"]
    assert len(client.app.state.nv.collector.index) == before


def test_unknown_and_closed_reports(client):
    r = client.post("/report/20990101T000000Z_x_ZZ_0_n1_0000", json={"format": "json", "content": VALID})
    assert r.status_code == 404 and "unknown" in r.json()["detail"]
    rid = client.post("/report", json={}).json()["report_id"]
    assert client.post(f"/report/{rid}/close").status_code == 200
    r = client.post(f"/report/{rid}", json={"format": "json", "content": VALID})
    assert r.status_code == 409 and "closed" in r.json()["detail"]


def test_probe_ip_is_scrubbed_everywhere(client):
    content = dict(VALID, input="https://scrub.example/")
    uid = client.post(f"/report/{client.report_id}", json={"format": "json", "content": content}).json()["measurement_uid"]
    stored = client.app.state.nv.collector.raw(uid)
    assert b"192.0.2.7" not in stored
    assert json.loads(stored)["test_keys"]["client_resolver"] == "127.0.0.1"


def test_probe_ip_scrub_keeps_longer_addresses_and_catches_escaped_forms():
    from netvigil.collector.intake import accept

    ip = "10.1.2.3"
    keep = [f"a{ip}", f"{ip}5", f".{ip}", f"1{ip}", f"{ip}.7", f"{ip}x"]  # other addresses and names
    gone = [ip, f"[{ip}]:443", f"{ip}:80", f"x {ip}/", f"::ffff:{ip}", f"{ip}."]
    content = dict(VALID, probe_ip=ip, test_keys=dict(VALID["test_keys"], keep=keep, gone=gone))
    line = accept(json.dumps(content).encode()).line
    tk = json.loads(line)["test_keys"]
    assert tk["keep"] == keep
    assert tk["gone"] == ["127.0.0.1", "[127.0.0.1]:443", "127.0.0.1:80", "x 127.0.0.1/", "::ffff:127.0.0.1", "127.0.0.1."]
    v6 = "2001:db8::1"
    content = dict(VALID, probe_ip=v6, test_keys=dict(VALID["test_keys"], a=[v6, f"[{v6}]:443", f"{v6}:5", f"{v6}0"]))
    tk = json.loads(accept(json.dumps(content).encode()).line)["test_keys"]
    assert tk["a"] == ["127.0.0.1", "[127.0.0.1]:443", f"{v6}:5", f"{v6}0"]
    escaped = json.dumps(dict(VALID, probe_ip="1.2.3.4")).encode().replace(b'"1.2.3.4"', b'"\\u0031.2.3.4"')
    stored = accept(escaped).line
    assert json.loads(stored)["probe_ip"] == "127.0.0.1" and b"0031" not in stored


def test_api_query_parameters_are_checked(client):
    for url in ("/api/v1/status?country=Russia", "/api/v1/verdicts?asn=foo", "/api/v1/verdicts?since=yesterday", "/api/v1/aggregates?since=2022-02-30",
                "/api/v1/verdicts?until=2022-01-01%2025:00",
                "/api/v1/aggregates?bucket=7x", "/api/v1/verdicts?limit=0", "/api/v1/verdicts?format=xml",
                "/api/v1/measurement/..%2F..%2Fetc", "/api/v1/measurements?probe_cc=123",
                "/country/Russia"):
        r = client.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code, r.text)


def test_submitted_envelope_is_the_measurement_model_with_raw_test_keys():
    """intake.Submitted is derived from Measurement: same fields and defaults (uids depend on
    them), test_keys kept raw, extra_fields left out, types bounded where validation says; it
    decodes what Measurement decodes."""
    import msgspec

    from netvigil.collector.intake import Submitted
    from netvigil.collector.validation import CONSTRAINED
    from netvigil.model.measurement import Measurement

    model = {f.name: f for f in msgspec.structs.fields(Measurement) if f.name != "extra_fields"}
    derived = {f.name: f for f in msgspec.structs.fields(Submitted)}
    assert list(derived) == list(model)
    for name, f in derived.items():
        if name == "test_keys":
            assert f.type is msgspec.Raw
        else:
            kind = CONSTRAINED.get(name, model[name].type)
            assert (f.type, f.default, f.required) == (kind, model[name].default, model[name].required), name
    raw = msgspec.json.encode(VALID)
    sub = msgspec.json.decode(raw, type=Submitted)
    full = msgspec.json.decode(raw, type=Measurement)
    assert msgspec.json.decode(bytes(sub.test_keys)) == full.test_keys
    assert (sub.probe_cc, sub.probe_asn, sub.measurement_start_time) == (full.probe_cc, full.probe_asn, full.measurement_start_time)


def test_unknown_envelope_keys_are_stored_as_submitted(client):
    content = dict(VALID, input="https://keys.example/", backend_version="1.1.4", bucket_date="2022-02-26")
    uid = client.post(f"/report/{client.report_id}", json={"format": "json", "content": content}).json()["measurement_uid"]
    stored = json.loads(client.app.state.nv.collector.raw(uid))
    assert stored["backend_version"] == "1.1.4" and stored["bucket_date"] == "2022-02-26"
    assert stored["measurement_uid"] == uid and stored["report_id"] == client.report_id


def test_test_keys_must_be_an_object(client):
    r = client.post(f"/report/{client.report_id}", json={"format": "json", "content": dict(VALID, test_keys=[1])})
    assert r.status_code == 400 and "test_keys" in r.json()["detail"]
