"""The lab's russia-2022 run through the observatory, as a live deployment would see it.

tests/data/lab/russia-2022 is a real run of the lab (probes in five ISP namespaces, censors
on their uplinks) with its ground-truth labels. Its measurements are submitted round by
round over HTTP (OONI protocol, the probe's own client) to a real observatory on loopback
whose analysis runs continuously; a webhook receiver records the signed alerts (the
observatory test_report_live.py reads too: tests/report/russia_live.py). The API,
the dashboard and the alerts must name the providers, techniques and onsets of the labels.
The analysis runs as a thread of the server, not in its own process (that one is covered by
tests/observatory/test_analysis_process.py and the byte-identical live-vs-batch parity).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022"

pytestmark = pytest.mark.slow


def labelled() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(service, asn) -> [(start, technique)] sorted, from labels.jsonl."""
    out: dict = defaultdict(set)
    for line in (RUN / "labels.jsonl").read_text().splitlines():
        lab = json.loads(line)
        out[(lab["service"], lab["asn"])].add((lab["start"], lab["technique"]))
    return {k: sorted(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def observed(russia_live):
    """What the API, the dashboard and the alerts said once the whole run was analysed (the
    observatory of tests/report/russia_live.py, shared with test_report_live.py)."""
    return russia_live.current(serving=False).observed


def by_service(observed, service: str) -> dict:
    return next(i for i in observed["incidents"] if i["service"] == service and i["kind"] == "censorship")


@pytest.mark.parametrize("service", ["twitter", "facebook"])
def test_providers_techniques_and_onsets_match_the_labels(observed, service):
    truth = {asn: spans for (svc, asn), spans in labelled().items() if svc == service}
    inc = by_service(observed, service)
    got = {n["asn"]: n for n in inc["networks"]}
    assert set(got) == set(truth)
    for asn, spans in truth.items():
        start, technique = spans[0]
        assert got[asn]["start"] == start, (asn, got[asn]["start"], start)
        assert got[asn]["techniques"][0]["technique"] == technique, (asn, got[asn]["techniques"])
    assert inc["start"] == min(s[0][0] for s in truth.values())
    assert inc["circumvention"] == "works"
    assert f"show that {'Twitter' if service == 'twitter' else 'Facebook'}" in inc["text"]
    assert f"since {inc['start'][11:16]} UTC on" in inc["text"]  # recorded data: dated, not "live"


def test_twitter_change_from_throttling_to_resets_is_recorded(observed):
    rostelecom = next(n for n in by_service(observed, "twitter")["networks"] if n["asn"] == "AS12389")
    steps = [t["technique"] for t in rostelecom["techniques"]]
    assert steps[0] == "throttled.targeted" and "tls.reset_after_hello" in steps


def test_the_outage_is_an_outage_not_censorship(observed):
    outage = [i for i in observed["incidents"] if i["kind"] == "outage"]
    assert [n["asn"] for i in outage for n in i["networks"]] == ["AS3216"]  # Beeline, per the labels
    assert outage[0]["start"] == labelled()[("control", "AS3216")][0][0]
    assert outage[0]["end"] is not None and "outage" in outage[0]["text"]


def test_alerts_for_start_and_end_arrive_signed(observed):
    events = [(a[0], a[1]["incident"]["service"], a[1]["incident"]["kind"]) for a in observed["alerts"]]
    assert all(a[2] for a in observed["alerts"]), "every alert carries a valid signature"
    assert ("start", "twitter", "censorship") in events and ("start", "facebook", "censorship") in events
    assert any(e == "start" and k == "outage" for e, _, k in events)
    assert any(e == "end" and k == "outage" for e, _, k in events)


def test_dashboard_grid_shows_each_provider_and_technique(observed):
    page = observed["page"]
    for name in ("Rostelecom", "MegaFon", "Beeline", "MTS", "ER-Telecom"):
        assert name in page
    cells = {(r["service"], r["asn"]): r for r in observed["status"]}
    assert cells[("facebook", "AS8359")]["technique"] == "dns.blockpage"
    assert cells[("facebook", "AS9049")]["technique"] == "tls.mitm"
    assert "DNS block page" in page and "TLS MITM" in page
