"""An unconfirmed incident answers at its permalink, marked so; a published incident that
loses its quorum is withdrawn (issue #13), end to end over HTTP on loopback.

One enrolled probe (127.0.1.1) sends the 96 relabelled measurements of one German ISP
(tests/observatory/test_quorum_live.py): its Twitter incident is unconfirmed, and its page and
API by id say so (1 independent probe, 2 required) instead of a 404, and the aggregates count
one probe however many measurements it sent. The operator trusts the probe: the incident is
published with a signed start alert. The operator takes the trust back: the incident and its
status cells leave the public lists, it is shown apart as unconfirmed again, and the webhook
receiver gets a signed "withdrawn" alert for it.
"""

from __future__ import annotations

import json

from netvigil.model.records import Incident, IncidentChange, NetworkSpan
from netvigil.report.alerts import Subscription, alert_payload

from tests.observatory.test_quorum_live import ADMIN, HTTP, client, enrol, jsonl, relabelled, serve, settled  # noqa: F401
from tests.report.test_report_live import Receiver, wait_for


def unconfirmed_twitter(url: str) -> dict | None:
    held = HTTP.get(f"{url}/api/v1/incidents", params={"country": "DE", "include": "unconfirmed"}).json()
    return next((i for i in held["results"] if i["service"] == "twitter" and not i["confirmed"]), None)


def public_ids(url: str) -> set[str]:
    return {i["id"] for i in HTTP.get(f"{url}/api/v1/incidents", params={"country": "DE"}).json()["results"]}


def blocked_cells(url: str) -> list[dict]:
    cells = HTTP.get(f"{url}/api/v1/status", params={"country": "DE"}).json()["results"]
    return [c for c in cells if c["class"] != "ok"]


def test_unconfirmed_permalink_and_withdrawal(tmp_path, relabelled):  # noqa: F811
    receiver = Receiver()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with serve(tmp_path / "obs", receiver) as obs:
            probe = enrol(obs.url, "127.0.1.1")
            with client(obs.url, "127.0.1.1", Authorization=probe["authorization"]) as c:
                assert c.post("/api/v1/submit", content=jsonl(relabelled["AS3320"])).status_code == 200
            settled(obs, 96)
            held = unconfirmed_twitter(obs.url)
            assert held is not None and public_ids(obs.url) == set()
            iid = held["id"]
            # the aggregates count that one probe, however many measurements and reports it sent
            aggs = HTTP.get(f"{obs.url}/api/v1/aggregates",
                             params={"country": "DE", "service": "twitter", "bucket": "1d"}).json()["results"]
            assert aggs and sum(a["total"] for a in aggs) > 1
            assert all(a["probes"] == 1 and a["source_networks"] == 1 for a in aggs)

            # the permalink answers, marked unconfirmed, with who backs it and how many must
            r = HTTP.get(f"{obs.url}/api/v1/incidents/{iid}")
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["confirmed"] is False and got["quorum"] == 2
            assert got["evidence"]["independent_probes"] == 1 and got["evidence"]["source_networks"] == 1
            assert "not yet confirmed" in got["text"]
            page = HTTP.get(f"{obs.url}/incident/{iid}")
            assert page.status_code == 200
            html = page.text
            assert "Unconfirmed" in html.split("<h1>")[1].split("</h1>")[0]  # the title says so first
            assert "1 independent probe" in html and "2 are required" in html
            assert "Embed this chart" not in html  # an unpublished claim is not offered for embedding
            assert HTTP.get(f"{obs.url}/api/v1/incidents/{iid}/chart.svg").status_code == 200
            assert HTTP.get(f"{obs.url}/api/v1/incidents/0123456789abcdef").status_code == 404
            home = HTTP.get(f"{obs.url}/").text  # the home page's unconfirmed signals link to it
            assert f"href='/incident/{iid}'" in home.split("id=unconfirmed")[1]

            # the operator trusts the probe: published, announced
            r = HTTP.post(f"{obs.url}/api/v1/admin/probes/{probe['probe_id']}/trust", headers=admin,
                           json={"trusted": True})
            assert r.status_code == 200 and r.json()["trusted"] is True
            started = receiver.wait("start", service="twitter", timeout=180)
            assert started["incident"]["id"] == iid
            wait_for(lambda: iid in public_ids(obs.url), timeout=60)
            wait_for(lambda: blocked_cells(obs.url) != [], timeout=60)
            published = HTTP.get(f"{obs.url}/api/v1/incidents/{iid}").json()
            assert published["confirmed"] is True
            assert "Unconfirmed" not in HTTP.get(f"{obs.url}/incident/{iid}").text.split("<h1>")[1].split("</h1>")[0]

            # ... and takes the trust back: withdrawn, signed, and unpublished again
            r = HTTP.post(f"{obs.url}/api/v1/admin/probes/{probe['probe_id']}/trust", headers=admin,
                           json={"trusted": False})
            assert r.status_code == 200 and r.json()["trusted"] is False
            withdrawn = receiver.wait("withdrawn", service="twitter", timeout=180)
            assert withdrawn["event"] == "withdrawn" and withdrawn["incident"]["id"] == iid
            assert withdrawn["incident"]["confirmed"] is False
            assert withdrawn["text"].startswith("Withdrawn: ") and "1 of the 2 required" in withdrawn["detail"]
            assert all(ok for ev, _, ok in receiver.alerts)  # every delivery signed and verified
            wait_for(lambda: iid not in public_ids(obs.url), timeout=60)
            wait_for(lambda: blocked_cells(obs.url) == [], timeout=60)  # the status cells go with it
            assert unconfirmed_twitter(obs.url)["id"] == iid
            assert HTTP.get(f"{obs.url}/api/v1/incidents/{iid}").json()["confirmed"] is False
            assert [ev for ev, body, _ in receiver.alerts if body["incident"]["id"] == iid].count("start") == 1
    finally:
        receiver.server.shutdown()


def test_withdrawal_goes_to_whoever_was_told_of_the_start():
    inc = Incident(id="i1", country="DE", service="twitter", kind="censorship", start="2026-12-06 09:00:00",
                   end=None, networks=[NetworkSpan(asn="AS3320", technique="tls.reset", start="2026-12-06 09:00:00")],
                   confirmed=False)
    change = IncidentChange("withdrawn", inc, "2026-12-06 10:00:00", detail="no longer backed by independent probes")
    assert Subscription(id="s", url="http://x/", events=["start", "change", "end"]).wants(change)
    assert Subscription(id="s", url="http://x/", events=["withdrawn"]).wants(change)
    assert not Subscription(id="s", url="http://x/", events=["end"]).wants(change)
    assert not Subscription(id="s", url="http://x/", country="RU").wants(change)
    body = json.loads(alert_payload(change))
    assert body["event"] == "withdrawn" and body["text"].startswith("Withdrawn: Twitter / X restricted in Germany")
    assert "No longer backed by independent probes." in body["text"]
