"""The attacks of issue #14 on intake, each through the real app: refused with a 400 that
names the field (validation.py), or stored with the probe's address scrubbed in every
spelling (scrub.py). Each of these was accepted, or a 500, before."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from netvigil.observatory.app import create_app

PROBE = "203.0.113.77"
VALID = {
    "test_name": "web_connectivity", "measurement_start_time": "2022-02-26 09:00:00", "probe_cc": "RU",
    "probe_asn": "AS12389", "probe_ip": PROBE, "input": "https://twitter.com/",
    "test_keys": {"queries": [], "requests": [], "client_resolver": "192.0.2.53"},
    "annotations": {"service": "twitter"},
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(tmp_path_factory.mktemp("hostile"), analysis=False, rate_per_second=1e6, rate_burst=1e6)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        c.report_id = c.post("/report", json={"test_name": "web_connectivity"}).json()["report_id"]
        yield c


def submit(client, content: dict | bytes):
    if isinstance(content, dict):
        return client.post(f"/report/{client.report_id}", json={"format": "json", "content": content})
    return client.post(f"/report/{client.report_id}", content=b'{"format":"json","content":' + content + b"}")


def stored(client, uid: str) -> bytes:
    return client.app.state.nv.collector.raw(uid)


def refused(r, field: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    assert field in r.json()["detail"], r.json()["detail"]


# ---- times ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["2022-13-45 99:99:99", "0000-01-01 00:00:00", "9999-12-31 23:59:59",
                                   "2011-12-31 23:59:59", "2022-02-30 10:00:00", "2022-02-26 09:00:00\n",
                                   "2022-02-26T09:00:00Z", "２０２２-02-26 09:00:00"])
def test_bad_measurement_time_refused(client, value):
    refused(submit(client, dict(VALID, measurement_start_time=value)), "measurement_start_time")


def test_time_more_than_a_day_ahead_refused_and_within_a_day_accepted(client):
    ahead = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 2 * 86400))
    refused(submit(client, dict(VALID, measurement_start_time=ahead)), "measurement_start_time")
    soon = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 3600))
    assert submit(client, dict(VALID, measurement_start_time=soon)).status_code == 200


def test_bad_test_start_time_refused(client):
    refused(submit(client, dict(VALID, test_start_time="2022-13-45 99:99:99")), "test_start_time")


# ---- identifiers ---------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("probe_cc", "RU\n"), ("probe_cc", "ru"), ("probe_cc", "RUS"), ("probe_cc", "ＲＵ"),
    ("probe_asn", "AS12389\n"), ("probe_asn", "AS１２３８９"), ("probe_asn", "AS١٢٣٨٩"),
    ("probe_asn", "AS9999999999"), ("probe_asn", "AS4294967296"), ("probe_asn", "as12389"),
    ("test_name", "web_connectivity\n"), ("report_id", "abc\n"), ("measurement_uid", "20220226090000.1_RU\n"),
    ("resolver_asn", "AS１"), ("test_runtime", -1.0), ("test_runtime", 1e12),
])
def test_bad_identifier_or_number_refused(client, field, value):
    refused(submit(client, dict(VALID, **{field: value})), field)


@pytest.mark.parametrize("value", ["twitter\n", "Twitter", "twi tter", "x" * 65, 42])
def test_bad_service_refused(client, value):
    refused(submit(client, dict(VALID, annotations={"service": value})), "annotations.service")


def test_largest_asn_accepted(client):
    assert submit(client, dict(VALID, probe_asn="AS4294967295")).status_code == 200


# ---- lengths -------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("probe_network_name", "R" * 257), ("input", "https://x.example/" + "a" * 2048),
    ("input", ["https://x.example/"] * 65), ("software_version", "1" * 65),
    ("annotations", {"service": "twitter", "note": "n" * 2049}),
    ("annotations", {"service": "twitter", **{f"k{i}": "v" for i in range(600)}}),
])
def test_overlong_strings_refused(client, field, value):
    refused(submit(client, dict(VALID, **{field: value})), field)


def test_huge_unknown_envelope_key_refused(client):
    refused(submit(client, dict(VALID, backend_note="n" * 70_000)), "envelope")
    assert submit(client, dict(VALID, backend_version="1.1.4")).status_code == 200  # small ones are kept


def test_huge_network_name_refused(client):
    refused(submit(client, dict(VALID, probe_network_name="Rostelecom " * 360_000)), "probe_network_name")


# ---- bytes that are not UTF-8 --------------------------------------------------------------

def test_non_utf8_bodies_are_400_not_500(client):
    content = json.dumps(dict(VALID, probe_network_name="@")).encode().replace(b"@", b"\xff\xfe")
    refused(submit(client, content), "UTF-8")
    in_test_keys = json.dumps(VALID).encode().replace(b'"queries"', b'"q\xc3"')  # inside raw test_keys
    refused(submit(client, in_test_keys), "UTF-8")
    refused(client.post("/api/v1/submit", content=in_test_keys + b"\n"), "UTF-8")
    refused(client.post("/report", content=b'{"test_name": "\xff"}'), "UTF-8")
    assert client.post("/report", content=b"\xff\xfe").status_code == 400


# ---- privacy -------------------------------------------------------------------------------

def _keys_with(address_spellings: dict[str, str]) -> dict:
    return dict(VALID, test_keys={"queries": [], "requests": [], **address_spellings})


def test_escaped_probe_ip_is_scrubbed(client):
    body = json.dumps(_keys_with({"seen": PROBE, "seen_port": PROBE + ":443"})).encode()
    body = body.replace(b"203.0", b"203\\u002e0")  # every spelling escaped, probe_ip too
    r = submit(client, body)
    assert r.status_code == 200, r.text
    line = stored(client, r.json()["measurement_uid"])
    decoded = json.loads(line)
    assert PROBE not in json.dumps(decoded) and b"u002e" not in line
    assert decoded["test_keys"]["seen"] == "127.0.0.1" and decoded["test_keys"]["seen_port"] == "127.0.0.1:443"
    assert decoded["probe_ip"] == "127.0.0.1"


def test_ipv6_probe_address_scrubbed_in_any_spelling(client):
    spellings = {"full": "2001:0db8:0000:0000:0000:0000:0000:0077", "upper": "2001:DB8::77",
                 "bracketed": "[2001:db8::77]:443", "mixed": "2001:Db8:0:0::0077", "other": "2001:db8::78",
                 "longer": "2001:db8::77:1"}
    r = submit(client, dict(_keys_with(spellings), probe_ip="2001:db8::77"))
    assert r.status_code == 200, r.text
    keys = json.loads(stored(client, r.json()["measurement_uid"]))["test_keys"]
    assert keys["full"] == keys["upper"] == "127.0.0.1" and keys["bracketed"] == "[127.0.0.1]:443"
    assert keys["mixed"] == "127.0.0.1"
    assert keys["other"] == "2001:db8::78" and keys["longer"] == "2001:db8::77:1"  # other addresses stay


def test_submitting_address_scrubbed_when_probe_ip_absent(tmp_path):
    app = create_app(tmp_path, analysis=False)
    content = {k: v for k, v in _keys_with({"seen": PROBE, "mapped": "::ffff:" + PROBE,
                                            "longer": PROBE + "1", "name": "a" + PROBE}).items() if k != "probe_ip"}
    with TestClient(app, raise_server_exceptions=False, client=(PROBE, 40000)) as c:
        r = c.post("/api/v1/submit", content=json.dumps(content).encode() + b"\n")
        assert r.status_code == 200, r.text
        line = c.app.state.nv.collector.raw(r.json()["measurement_uids"][0])
    keys = json.loads(line)["test_keys"]
    assert keys["seen"] == "127.0.0.1" and keys["mapped"] == "::ffff:127.0.0.1"
    assert keys["longer"] == PROBE + "1" and keys["name"] == "a" + PROBE  # not the address: kept
    assert json.loads(line).get("probe_ip", "127.0.0.1") == "127.0.0.1"  # absent stays absent


def test_valid_measurement_still_stored_byte_for_byte(client):
    content = dict(VALID, probe_ip="127.0.0.1")
    r = submit(client, content)
    assert r.status_code == 200
    line = stored(client, r.json()["measurement_uid"])
    assert json.loads(line)["test_keys"] == VALID["test_keys"]
