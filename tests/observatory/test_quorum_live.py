"""Nothing published on one voice (issue #13), end to end on loopback.

The poisoning of the issue, repeated: the 192 measurements of two ISPs in the bundled
russia-2022 recording (src/netvigil/data/recorded, Rostelecom and MegaFon), relabelled as
Germany (AS3320 Deutsche Telekom, AS3209 Vodafone) and dated today, sent in one POST from one
client, are stored but publish nothing: no incident, no status cell, no alert to a webhook
receiver on loopback. The same data from two enrolled probes on two source networks
(127.0.1.1 and 127.0.2.1: two /24s the collector tells apart) does; so does one probe the
operator trusts.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from netvigil.collector.fleet import FleetSettings
from netvigil.lab.demo import RECORDED
from netvigil.model.measurement import Measurement
from netvigil.observatory.serve import ObservatoryThread
from netvigil.report.alerts import Subscriptions
from netvigil.report.replay import load_run

from tests.report.test_report_live import Receiver, wait_for

ADMIN = "admin-token-0123456789abcdef"
TRUSTED_INVITE = "trusted-invite-0123456789"
AS = {"AS12389": ("AS3320", "Deutsche Telekom"), "AS31133": ("AS3209", "Vodafone")}
# one client for every plain request (HTTP.get() builds a client and its SSL context each
# call: ~35 ms of CPU)
HTTP = httpx.Client()


@pytest.fixture(scope="module")
def relabelled() -> dict[str, list[Measurement]]:
    """ASN -> its 96 relabelled measurements (192 in all), the newest a minute ago."""
    ms = [m for m in load_run(RECORDED) if m.probe_asn in AS]
    fmt = "%Y-%m-%d %H:%M:%S"
    last = dt.datetime.strptime(ms[-1].measurement_start_time, fmt)
    shift = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0) - dt.timedelta(minutes=1) - last
    out: dict[str, list[Measurement]] = {}
    for m in ms:
        asn, name = AS[m.probe_asn]
        t = (dt.datetime.strptime(m.measurement_start_time, fmt) + shift).strftime(fmt)
        m2 = msgspec.structs.replace(m, probe_cc="DE", probe_asn=asn, probe_network_name=name,
                                     measurement_start_time=t, measurement_uid=None, report_id="")
        out.setdefault(asn, []).append(m2)
    assert sum(len(v) for v in out.values()) == 192
    return out


def jsonl(ms: list[Measurement]) -> bytes:
    return b"".join(msgspec.json.encode(m) + b"\n" for m in ms)


def client(url: str, source: str, **headers) -> httpx.Client:
    return httpx.Client(base_url=url, headers=headers, timeout=60,
                        transport=httpx.HTTPTransport(local_address=source))


def serve(data_dir: Path, receiver: Receiver, **settings) -> ObservatoryThread:
    Subscriptions(data_dir / "subscriptions.json", allow_private=True).add(receiver.url, secret="webhook-secret",
                                                                           country="DE")
    settings.setdefault("admin_token", ADMIN)
    return ObservatoryThread(data_dir, analysis_interval=0.2, allow_private_webhooks=True, **settings)


def settled(obs, n: int) -> None:
    """The analysis has taken in N measurements and refreshed its incidents since (and an
    alert of that refresh had a moment to go out)."""
    pump = obs.app.state.nv.pump
    wait_for(lambda: pump.analysed >= n and not pump._stale, timeout=180)
    time.sleep(1.0)


def public(url: str) -> tuple[list, list]:
    incs = HTTP.get(f"{url}/api/v1/incidents", params={"country": "DE"}).json()["results"]
    cells = HTTP.get(f"{url}/api/v1/status", params={"country": "DE"}).json()["results"]
    return incs, [c for c in cells if c["class"] != "ok"]


def enrol(url: str, source: str, **headers) -> dict:
    with client(url, source, **headers) as c:
        r = c.post("/api/v1/probes/enrol")
        assert r.status_code == 200, r.text
        return r.json()


def test_one_client_publishes_nothing(tmp_path, relabelled):
    receiver = Receiver()
    try:
        with serve(tmp_path / "obs", receiver, analysis_process=False) as obs, client(obs.url, "127.0.0.1") as c:
            # one client, one address: one POST per relabelled network (the 192 measurements
            # of the recording are over the collector's 8 MB batch cap together)
            for ms in relabelled.values():
                r = c.post("/api/v1/submit", content=jsonl(ms))
                assert r.status_code == 200 and r.json()["count"] == len(ms), r.text
            settled(obs, 192)
            incs, blocked = public(obs.url)
            assert incs == [] and blocked == []  # no public incident, no status change
            assert receiver.alerts == []  # and no alert
            # stored all the same, and shown apart as unconfirmed, backed by one probe on one network
            apart = {"country": "DE", "include": "unconfirmed"}
            held = HTTP.get(f"{obs.url}/api/v1/incidents", params=apart).json()["results"]
            assert "twitter" in {i["service"] for i in held} and not any(i["confirmed"] for i in held)
            assert all(i["evidence"]["independent_probes"] == 1 and i["evidence"]["source_networks"] == 1
                       and i["evidence"]["measurement_count"] > 1 for i in held)
            cells = HTTP.get(f"{obs.url}/api/v1/status", params=apart).json()["results"]
            assert {c["asn"] for c in cells if c["class"] != "ok"} == {"AS3320", "AS3209"}
            assert not any(c["confirmed"] for c in cells) and {c["independent_probes"] for c in cells} == {1}
            page = HTTP.get(f"{obs.url}/").text  # the dashboard shows them apart, never as the status
            assert "Unconfirmed signals" in page and "Twitter" in page.split("id=unconfirmed")[1]
            assert "Germany" not in page.split("id=unconfirmed")[0]
            bad = HTTP.get(f"{obs.url}/api/v1/incidents", params={"include": "everything"})
            assert bad.status_code == 400 and "include" in bad.json()["detail"]
            store = obs.app.state.nv.pump.analyser.store
            voices = store.db.query(f"SELECT DISTINCT probe_id, network FROM {store.table('voices')}")
            assert voices == [{"probe_id": "", "network": "127.0.0.0/24"}]
    finally:
        receiver.server.shutdown()


def test_two_probes_on_two_networks_publish(tmp_path, relabelled):
    receiver = Receiver()
    try:
        with serve(tmp_path / "obs", receiver) as obs:
            sources = {"AS3320": "127.0.1.1", "AS3209": "127.0.2.1"}
            for asn, source in sources.items():
                e = enrol(obs.url, source)
                with client(obs.url, source, Authorization=e["authorization"]) as c:
                    r = c.post("/api/v1/submit", content=jsonl(relabelled[asn]))
                    assert r.status_code == 200, r.text
            started = receiver.wait("start", service="twitter", timeout=180)
            assert started["incident"]["country"] == "DE"
            settled(obs, 192)
            incs, blocked = public(obs.url)
            twitter = next(i for i in incs if i["service"] == "twitter")
            ev = twitter["evidence"]
            assert twitter["confirmed"] is True and ev["independent_probes"] == 2 and ev["source_networks"] == 2
            assert ev["measurement_count"] > ev["independent_probes"]  # measurements are not probes
            assert {c["asn"] for c in blocked} == {"AS3320", "AS3209"} and all(c["confirmed"] for c in blocked)
    finally:
        receiver.server.shutdown()


def test_trusted_probes_publish_alone(tmp_path, relabelled):
    """A probe enrolled with the operator's trusted invite, or marked trusted by the admin."""
    receiver = Receiver()
    fleet = FleetSettings(trusted_invite_token=TRUSTED_INVITE)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with serve(tmp_path / "obs", receiver, extra={"fleet": fleet}) as obs:
            plain = enrol(obs.url, "127.0.1.1")
            with client(obs.url, "127.0.1.1", Authorization=plain["authorization"]) as c:
                assert c.post("/api/v1/submit", content=jsonl(relabelled["AS3320"])).status_code == 200
            settled(obs, 96)
            assert public(obs.url) == ([], []) and receiver.alerts == []
            # the operator vouches for it: what it sent is published, the start announced
            r = HTTP.post(f"{obs.url}/api/v1/admin/probes/{plain['probe_id']}/trust", headers=admin,
                           json={"trusted": True})
            assert r.json()["trusted"] is True
            started = receiver.wait("start", service="twitter", timeout=180)
            assert started["incident"]["evidence"]["trusted"] is True
            assert started["incident"]["evidence"]["independent_probes"] == 1
            # a probe enrolled with the trusted invite is trusted from the start
            own = enrol(obs.url, "127.0.2.1", Authorization=f"Bearer {TRUSTED_INVITE}")
            listed = {p["probe_id"]: p["trusted"] for p in
                      HTTP.get(f"{obs.url}/api/v1/admin/probes", headers=admin).json()["results"]}
            assert listed == {plain["probe_id"]: True, own["probe_id"]: True}
    finally:
        receiver.server.shutdown()
