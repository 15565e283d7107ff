"""The observatory end to end on loopback: probes submit, analysis runs, API and alerts follow.

A recorded run of the lab's russia-2022 scenario (tests/data/lab/russia-2022: Twitter
throttled from 09:00 then reset from 12:00, Facebook blocked per ISP from 10:00, an outage
on Beeline 10:30-11:30, VPN working) is submitted over HTTP round by round in two phases, as
live probes would (before 11:00, then the rest), to a real server whose analysis pump runs
on chdb; a webhook receiver on loopback records the signed alerts. The pump runs as a thread
of the server (both pumps hand changes to the same alerter; the analysis process is covered
by tests/observatory/test_analysis_process.py and the byte-identical live-vs-batch parity).
The observatory is the one test_report_lab_russia.py reads (tests/report/russia_live.py).
"""

from __future__ import annotations

import pytest

# Receiver and wait_for are imported from here by tests/observatory's live quorum tests
from tests.report.russia_live import Receiver, wait_for  # noqa: F401


@pytest.fixture(scope="module")
def live(russia_live):
    """The run submitted in two phases (tests/report/russia_live.py): the server URL, the
    receiver, what was seen after phase 1 and the alerts; the server stops with this module."""
    run = russia_live.current(serving=True)
    yield run.live
    run.close()


def test_start_and_end_alerts_are_signed_and_say_what_happened(live):
    started, ended = live["started"], live["ended"]
    assert all(ok for _, _, ok in live["receiver"].alerts), "every alert carries a valid HMAC signature"
    assert started["incident"]["service"] == "twitter" and started["incident"]["country"] == "RU"
    assert started["incident"]["start"] == "2022-02-26 09:00:00"
    assert "throttled to " in started["text"] and "kbit/s" in started["text"]
    # recorded 2022 data: the alert is the page's dated statement, never "live"
    assert "in Russia since 09:00 UTC on 26 February 2022" in started["text"] and "Live" not in started["text"]
    assert live["outage_started"]["incident"]["start"] == "2022-02-26 10:30:00"
    assert ended["incident"]["id"] == live["outage_started"]["incident"]["id"]
    assert ended["incident"]["end"] == "2022-02-26 11:30:00" and "outage" in ended["text"]


def test_status_during_the_block_names_provider_and_technique(live):
    cells = {(r["service"], r["asn"]): r for r in live["during"]["results"]}
    assert cells[("twitter", "AS8359")]["technique"] == "throttled.targeted"
    assert cells[("facebook", "AS8359")]["technique"] == "dns.blockpage"
    assert cells[("facebook", "AS9049")]["technique"] == "tls.mitm"
    assert cells[("facebook", "AS31133")]["technique"] == "tls.closed_after_hello"
    assert cells[("control", "AS8359")]["class"] == "ok"
    assert cells[("twitter", "AS8359")]["incident_id"]


def test_incident_api_has_networks_evidence_and_text(live):
    url = live["url"]
    incs = live["http"].get(f"{url}/api/v1/incidents", params={"country": "RU"}).json()["results"]
    inc = next(i for i in incs if i["service"] == "facebook")
    nets = {n["asn"]: n["technique"] for n in inc["networks"]}
    assert nets == {"AS12389": "tls.reset_after_hello", "AS31133": "tls.closed_after_hello",
                    "AS3216": "tls.timeout_after_hello", "AS8359": "dns.blockpage", "AS9049": "tls.mitm"}
    assert inc["circumvention"] == "works" and inc["kind"] == "censorship"
    one = live["http"].get(f"{url}/api/v1/incidents/{inc['id']}").json()
    # the recorded data ends on 2022-02-26: the statement is dated by it, never "live" or "currently"
    assert one["text"].startswith("Metrics up to 13:30 UTC on 26 February 2022 show that Facebook has been "
                                  "restricted on multiple providers in Russia since 10:00 UTC on 26 February 2022.")
    assert "Circumvention was possible using VPN services." in one["text"]
    uid = one["evidence"]["measurement_uids"][0]
    raw = live["http"].get(f"{url}/api/v1/measurement/{uid}").json()
    assert raw["measurement_uid"] == uid and raw["probe_ip"] == "127.0.0.1"
    svg = live["http"].get(f"{url}/api/v1/incidents/{inc['id']}/chart.svg", timeout=60)  # the first chart starts the renderer
    assert svg.headers["content-type"].startswith("image/svg") and b"onset 10:00 UTC" in svg.content
    png = live["http"].get(f"{url}/api/v1/incidents/{inc['id']}/chart.png", timeout=60).content
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert live["http"].get(f"{url}/api/v1/incidents/nope").status_code == 404
    twitter = next(i for i in incs if i["service"] == "twitter")
    told = live["http"].get(f"{url}/api/v1/incidents/{twitter['id']}").json()
    rates = [t["rate_bps"] for n in told["networks"] for t in n["techniques"] if t.get("rate_bps")]
    assert rates and all(104_000 <= r <= 156_000 for r in rates)  # the lab's 130 kbit/s, within 20%
    assert "kbit/s" in told["text"]


def test_verdicts_paging_and_csv_export(live):
    url = live["url"]
    first = live["http"].get(f"{url}/api/v1/verdicts", params={"country": "RU", "limit": 50}).json()
    assert first["metadata"]["count"] == 50 and first["metadata"]["next_url"]
    second = live["http"].get(first["metadata"]["next_url"]).json()
    assert {v["measurement_uid"] for v in first["results"]}.isdisjoint(v["measurement_uid"] for v in second["results"])
    csv_text = live["http"].get(f"{url}/api/v1/verdicts", params={"country": "RU", "service": "twitter", "limit": 1000,
                                                                     "format": "csv"}).text
    header, *rows = csv_text.strip().splitlines()
    assert "class" in header.split(",") and "rate_bps" in header.split(",")
    assert any("throttled.targeted" in r for r in rows) and any("tls.reset_after_hello" in r for r in rows)


def test_aggregates_and_measurement_listing(live):
    url = live["url"]
    aggs = live["http"].get(f"{url}/api/v1/aggregates", params={"country": "RU", "service": "twitter", "asn": "AS8359",
                                                                  "bucket": "1h"}).json()["results"]
    by_hour = {a["bucket"][11:13]: a["counts"] for a in aggs}
    assert by_hour["08"].get("ok") and not by_hour["08"].get("throttled")
    assert by_hour["09"].get("throttled") and not by_hour["09"].get("ok")
    assert by_hour["13"].get("tls")
    listing = live["http"].get(f"{url}/api/v1/measurements", params={"probe_asn": "AS8359", "limit": 5}).json()
    assert listing["metadata"]["count"] == 5 and all(r["probe_asn"] == "AS8359" for r in listing["results"])
    total = live["http"].get(f"{url}/api/v1/health").json()
    assert total["measurements"] == live["count"]


def test_metrics_endpoint(live):
    text = live["http"].get(f"{live['url']}/metrics").text
    assert f"netvigil_measurements_stored {float(live['count'])}" in text
    assert 'netvigil_alerts_total{outcome="delivered"}' in text
