"""Probe identity on a real observatory on loopback: enrolment, credentials, report ownership,
provenance, quotas, and the project's client recovering from a report it may not use."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import msgspec
import pytest

from netvigil.probe.client import submit_measurements
from netvigil.collector.fleet import FleetSettings
from netvigil.collector.probes import ClaimCheck, check_claim, source_network
from netvigil.model.measurement import Measurement
from netvigil.observatory.serve import ObservatoryThread
from netvigil.targets.geo import GeoTable, Locator

ADMIN = "admin-token-0123456789abcdef"


def make(i: int, cc: str = "RU", asn: str = "AS12389") -> Measurement:
    return Measurement(
        test_name="netvigil_service", measurement_start_time=f"2022-02-26 09:{i // 60:02d}:{i % 60:02d}",
        probe_cc=cc, probe_asn=asn, probe_network_name="Rostelecom", input="https://twitter.com/",
        annotations={"service": "twitter", "path": "direct"}, test_keys={"i": i},
    )


def server(tmp_path: Path, **settings) -> ObservatoryThread:
    settings.setdefault("analysis", False)
    settings.setdefault("admin_token", ADMIN)
    return ObservatoryThread(tmp_path / "obs", **settings)


def enrol(client: httpx.Client, **headers) -> dict:
    r = client.post("/api/v1/probes/enrol", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_enrol_keeps_only_a_hash_in_a_private_file(tmp_path):
    with server(tmp_path) as srv, httpx.Client(base_url=srv.url) as c:
        e = enrol(c)
        assert e["probe_id"].startswith("nvp_") and e["authorization"] == f"Bearer {e['probe_id']}:{e['secret']}"
        path = tmp_path / "obs" / "collector" / "probes.jsonl"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert e["secret"] not in path.read_text()
        # the secret works; a wrong one is a 401 naming the probe
        ok = c.post("/api/v1/check-in", headers={"Authorization": e["authorization"]}, json={})
        assert ok.status_code == 200 and ok.json()["probe_id"] == e["probe_id"]
        bad = c.post("/api/v1/check-in", headers={"Authorization": f"Bearer {e['probe_id']}:nope"}, json={})
        assert bad.status_code == 401 and e["probe_id"] in bad.json()["detail"]


def test_enrolment_by_invitation(tmp_path):
    invite = "invite-0123456789abcdef"
    with server(tmp_path, extra={"fleet": FleetSettings(invite_token=invite)}) as srv, \
            httpx.Client(base_url=srv.url) as c:
        none = c.post("/api/v1/probes/enrol")
        assert none.status_code == 401 and "invite" in none.json()["detail"]
        assert c.post("/api/v1/probes/enrol", headers={"Authorization": "Bearer wrong-invite-xxxxxxxx"}).status_code == 403
        assert enrol(c, Authorization=f"Bearer {invite}")["probe_id"].startswith("nvp_")


def test_enrolments_per_network_are_capped(tmp_path):
    with server(tmp_path, extra={"fleet": FleetSettings(enrol_per_hour=3)}) as srv, \
            httpx.Client(base_url=srv.url) as c:
        codes = [c.post("/api/v1/probes/enrol").status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]


def test_check_in_answers_what_to_measure(tmp_path):
    fleet = FleetSettings(services=("twitter", "telegram"), cadence_seconds=600, helpers=("127.0.0.1:4443",))
    with server(tmp_path, extra={"fleet": fleet}) as srv, httpx.Client(base_url=srv.url) as c:
        a = c.post("/api/v1/check-in", json={"software_name": "netvigil-agent"}).json()
        assert a["services"] == ["twitter", "telegram"] and a["cadence_seconds"] == 600
        assert a["helpers"] == ["127.0.0.1:4443"] and a["catalogue_version"]
        assert (a["probe_asn"], a["probe_cc"], a["located"]) == ("AS0", "ZZ", False)  # loopback: unknown
        assert a["probe_id"] is None
        bad = c.post("/api/v1/check-in", content=b"[1,2")
        assert bad.status_code == 400 and "check-in body" in bad.json()["detail"]


def test_report_is_bound_to_its_probe(tmp_path):
    with server(tmp_path) as srv, httpx.Client(base_url=srv.url) as c:
        a, b = enrol(c), enrol(c)
        ha, hb = {"Authorization": a["authorization"]}, {"Authorization": b["authorization"]}
        rid = c.post("/report", headers=ha, json={"probe_cc": "RU", "probe_asn": "AS12389",
                                                   "test_name": "netvigil_service"}).json()["report_id"]
        body = {"format": "json", "content": msgspec.to_builtins(make(1))}
        # another probe, and an anonymous client, can neither write to nor close it
        for headers in (hb, {}):
            w = c.post(f"/report/{rid}", headers=headers, json=body)
            assert w.status_code == 403 and "another probe" in w.json()["detail"]
            assert c.post(f"/report/{rid}/close", headers=headers).status_code == 403
        assert c.post(f"/report/{rid}", headers=ha, json=body).status_code == 200
        closed = c.post(f"/report/{rid}/close", headers=ha)
        assert closed.status_code == 200 and closed.json()["measurements"] == 1
        assert c.post(f"/report/{rid}", headers=ha, json=body).status_code == 409


def test_anonymous_reports_are_bound_to_their_address(tmp_path):
    with server(tmp_path) as srv:
        with httpx.Client(base_url=srv.url) as c:
            rid = c.post("/report", json={"probe_cc": "RU", "probe_asn": "AS1", "test_name": "t"}).json()["report_id"]
        other = httpx.Client(base_url=srv.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with other:
            assert other.post(f"/report/{rid}/close").status_code == 403
        with httpx.Client(base_url=srv.url) as c:
            assert c.post(f"/report/{rid}/close").status_code == 200


def test_client_recovers_from_a_closed_or_stolen_report(tmp_path, monkeypatch):
    """The report is closed by its owner half-way (as an attacker did before reports had owners):
    the client opens a new report and loses nothing."""
    from netvigil.probe import client as client_mod

    with server(tmp_path) as srv, httpx.Client(base_url=srv.url) as c:
        e = enrol(c)
        token = e["authorization"].removeprefix("Bearer ")
        real_post = client_mod._Session.post
        sent = {"n": 0}

        def post(self, path, payload):
            answer = real_post(self, path, payload)
            if path.startswith("/report/") and not path.endswith("/close"):
                sent["n"] += 1
                if sent["n"] % 10 == 0:  # close the report under the client's feet
                    assert c.post(f"{path}/close", headers={"Authorization": e["authorization"]}).status_code == 200
            return answer

        monkeypatch.setattr(client_mod._Session, "post", post)
        res = submit_measurements(srv.url, [make(i) for i in range(40)], token=token, queue_dir=tmp_path / "q")
        assert res.submitted == 40 and res.rejected == 0 and res.queued == 0, res.errors
        assert len(res.report_ids) == 4
        assert len(srv.app.state.nv.collector.index) == 40


def test_wrong_credentials_keep_measurements_queued(tmp_path):
    with server(tmp_path) as srv:
        res = submit_measurements(srv.url, [make(i) for i in range(3)], token="nvp_" + "0" * 24 + ":wrong",
                                  queue_dir=tmp_path / "q", retries=0)
        assert res.submitted == 0 and res.rejected == 0 and res.queued == 3
        assert "401" in res.errors[0]


def test_provenance_recorded_for_every_submission(tmp_path):
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with server(tmp_path) as srv, httpx.Client(base_url=srv.url) as c:
        e = enrol(c)
        probe = submit_measurements(srv.url, [make(1)], token=e["authorization"].removeprefix("Bearer "))
        anon = httpx.Client(base_url=srv.url, transport=httpx.HTTPTransport(local_address="127.0.0.3"))
        with anon:
            r = anon.post("/api/v1/submit", content=msgspec.json.encode(make(2)) + b"\n")
        assert r.status_code == 200
        p = c.get(f"/api/v1/admin/provenance/{probe.measurement_uids[0]}", headers=auth).json()
        assert p == {"uid": probe.measurement_uids[0], "network": "127.0.0.0/24", "probe_id": e["probe_id"],
                     "claim": "unknown", "located": "local address", "trusted": False}
        q = c.get(f"/api/v1/admin/provenance/{r.json()['measurement_uids'][0]}", headers=auth).json()
        assert q["probe_id"] is None and q["network"] == "127.0.0.0/24"
        assert c.get(f"/api/v1/admin/provenance/{probe.measurement_uids[0]}").status_code == 401
        assert c.get("/api/v1/admin/provenance/nope", headers=auth).status_code == 404
        # an operator marks the probe trusted
        t = c.post(f"/api/v1/admin/probes/{e['probe_id']}/trust", headers=auth, json={"trusted": True})
        assert t.json() == {"probe_id": e["probe_id"], "trusted": True}
        listed = c.get("/api/v1/admin/probes", headers=auth).json()
        assert listed["results"][0]["trusted"] is True and "secret" not in str(listed)
        assert c.post("/api/v1/admin/probes/nvp_x/trust", headers=auth, json={}).status_code == 404


def test_network_quota_binds_many_probe_ids_on_one_network(tmp_path):
    """Fourteen ids enrolled from one /24 share that network's bucket (twice one probe's burst)."""
    fleet = FleetSettings(enrol_per_hour=100, network_factor=2.0)
    with server(tmp_path, rate_per_second=1.0, rate_burst=5.0, extra={"fleet": fleet}) as srv, \
            httpx.Client(base_url=srv.url) as c:
        ids = [enrol(c) for _ in range(14)]
        codes = []
        for i, e in enumerate(ids):
            r = c.post("/api/v1/submit", headers={"Authorization": e["authorization"]},
                       content=msgspec.json.encode(make(i)) + b"\n")
            codes.append(r.status_code)
        assert codes[:10] == [200] * 10 and 429 in codes[10:]  # the /24's burst: 10 (2 x 5)


def test_claim_check_against_the_ip_table(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("80.128.0.0/11\t3320\tDE\tDeutsche Telekom\n")
    loc = Locator([GeoTable.load(table)], use_geoip=False)
    assert check_claim("80.128.0.7", "AS3320", "DE", loc) == (ClaimCheck.MATCH, "AS3320/DE")
    assert check_claim("80.128.0.7", "AS12389", "RU", loc) == (ClaimCheck.MISMATCH, "AS3320/DE")
    assert check_claim("5.1.2.3", "AS3320", "DE", loc)[0] is ClaimCheck.UNKNOWN
    assert check_claim("127.0.0.2", "AS3320", "DE", loc) == (ClaimCheck.UNKNOWN, "local address")
    assert check_claim("10.1.2.3", "AS3320", "DE", loc)[0] is ClaimCheck.UNKNOWN
    assert source_network("192.0.2.77") == "192.0.2.0/24"
    assert source_network("2001:db8:1:2:3::4") == "2001:db8:1:2::/64"
    assert source_network("::ffff:192.0.2.9") == "192.0.2.0/24"
    assert source_network(None) == "unknown"


def test_damaged_registry_is_a_clear_error(tmp_path):
    from netvigil.collector.probes import ProbeRegistry
    from netvigil.errors import StoreError

    path = tmp_path / "probes.jsonl"
    good = ProbeRegistry(path)
    e = good.enrol()
    path.write_bytes(path.read_bytes() + b'{"probe_id": "nvp_')  # a torn last line: never answered
    assert set(ProbeRegistry(path).probes) == {e.probe_id}
    path.write_bytes(b"{not json\n" + path.read_bytes())
    with pytest.raises(StoreError, match="damaged at line 1"):
        ProbeRegistry(path)
    path.write_bytes(b"x" * 100_000)  # one huge line: refused, not held whole
    with pytest.raises(StoreError, match="longer than 4096"):
        ProbeRegistry(path)


def test_require_probe_token_closes_open_enrolment(tmp_path):
    invite = "invite-0123456789abcdef"
    with server(tmp_path / "a", require_probe_token=True) as srv, httpx.Client(base_url=srv.url) as c:
        r = c.post("/api/v1/probes/enrol")
        assert r.status_code == 403 and "invite-file" in r.json()["detail"]
    with server(tmp_path / "b", require_probe_token=True, extra={"fleet": FleetSettings(invite_token=invite)}) as srv, \
            httpx.Client(base_url=srv.url) as c:
        e = enrol(c, Authorization=f"Bearer {invite}")
        line = msgspec.json.encode(make(1)) + b"\n"
        assert c.post("/api/v1/submit", content=line).status_code == 401
        assert c.post("/api/v1/submit", content=line, headers={"Authorization": e["authorization"]}).status_code == 200


def test_claimed_asn_quota_binds_every_probe_claiming_it(tmp_path):
    """One ASN's series cannot be flooded by enrolling more ids: the claimed ASN has its own bucket
    (here 5 measurements), charged before anything is stored, whoever sends them."""
    fleet = FleetSettings(asn_factor=0.5)
    with server(tmp_path, rate_per_second=0.01, rate_burst=10.0, extra={"fleet": fleet}) as srv, \
            httpx.Client(base_url=srv.url) as c:
        a, b = enrol(c), enrol(c)
        ha, hb = {"Authorization": a["authorization"]}, {"Authorization": b["authorization"]}
        batch = b"".join(msgspec.json.encode(make(i, cc="DE", asn="AS3320")) + b"\n" for i in range(5))
        assert c.post("/api/v1/submit", headers=ha, content=batch).status_code == 200
        over = c.post("/api/v1/submit", headers=hb, content=msgspec.json.encode(make(9, cc="DE", asn="AS3320")))
        assert over.status_code == 429 and "claimed AS3320" in over.json()["detail"]
        rid = c.post("/report", headers=hb, json={"probe_cc": "DE", "probe_asn": "AS3209",
                                                   "test_name": "netvigil_service"}).json()["report_id"]
        # the report says AS3209, the measurement claims AS3320: the measurement's claim is charged
        body = {"format": "json", "content": msgspec.to_builtins(make(10, cc="DE", asn="AS3320"))}
        assert c.post(f"/report/{rid}", headers=hb, json=body).status_code == 429
        body = {"format": "json", "content": msgspec.to_builtins(make(11, cc="DE", asn="AS3209"))}
        assert c.post(f"/report/{rid}", headers=hb, json=body).status_code == 200
        assert len(srv.app.state.nv.collector.index) == 6  # nothing refused was stored
