"""What the observatory publishes on the russia-2022 demo store is right and complete.

One store holds the recorded lab run (Twitter throttled from 09:00 then reset from 12:00,
Facebook blocked per ISP from 10:00, QUIC blocked on three ISPs from 11:00, an outage on
Beeline 10:30-11:30, a VPN path that works), written directly by the Observatory as
`netvigil demo` does; a real app serves it (its analysis as a thread: what is published is the
point here; the analysis process and its typed reads are tests/report/test_read_side.py's and
tests/test_fuzz_all_routes.py's). Each test names the published item it checks (issue 15);
all failed on the code before it.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from netvigil.observatory.app import create_app
from netvigil.report.replay import load_run
from tests.conftest import ready_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_report_cli import RUN, fill_with_run  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    fill_with_run(d)
    with ready_client(create_app(d, analysis_process=False, analysis_interval=0.2)) as c:
        deadline = time.monotonic() + 60
        while not c.get("/api/v1/status").json()["results"] and time.monotonic() < deadline:
            time.sleep(0.1)
        incs = c.get("/api/v1/incidents", params={"country": "RU"}).json()["results"]
        yield {"c": c, "incs": {("outage" if i["kind"] == "outage" else i["service"]): i for i in incs},
               "count": len(load_run(RUN)), "dir": d}


def html(c, path, **params):
    r = c.get(path, params=params, headers={"accept": "text/html"})
    return r


# ---- wrong items --------------------------------------------------------------------------


def test_1_outage_chart_draws_the_outage(demo):
    outage = demo["incs"]["outage"]
    svg = demo["c"].get(f"/api/v1/incidents/{outage['id']}/chart.svg")
    assert svg.status_code == 200
    text = svg.text
    assert "Beeline (AS3216)" in text and "no connectivity" in text  # a panel and a legend entry with data


def test_3_control_cells_are_not_linked_to_the_twitter_incident(demo):
    rows = demo["c"].get("/api/v1/status", params={"country": "RU", "service": "control"}).json()["results"]
    assert rows and all(r["incident_id"] is None and r["class"] == "ok" for r in rows)
    page = html(demo["c"], "/country/RU").text
    control = re.findall(r"<td class='cell ok'[^>]*data-service='control'[^>]*>(.*?)</td>", page)
    assert control and not any("/incident/" in cell for cell in control)


def test_4_outage_on_one_network_is_titled_with_it(demo):
    outage = demo["incs"]["outage"]
    page = html(demo["c"], f"/incident/{outage['id']}").text
    assert "Network outage on Beeline (AS3216) in Russia" in page


def test_5_list_text_gives_the_rate_as_the_detail_does(demo):
    listed = demo["incs"]["twitter"]["text"]
    detail = demo["c"].get(f"/api/v1/incidents/{demo['incs']['twitter']['id']}").json()["text"]
    assert re.search(r"about 1[0-5]\d kbit/s", listed) and listed == detail


def test_6_evidence_covers_every_phase_and_network(demo):
    ev = demo["incs"]["twitter"]["evidence"]
    times = [u[:12] for u in ev["measurement_uids"]]
    assert ev["measurement_count"] > len(ev["measurement_uids"])
    assert any(t >= "202202261200" for t in times), "the reset phase from 12:00 has evidence"
    assert any(t < "202202261200" for t in times), "the throttling phase has evidence"
    nets = set()
    for uid in ev["measurement_uids"]:
        nets.add(demo["c"].get(f"/api/v1/measurement/{uid}").json()["probe_asn"])
    assert nets == {n["asn"] for n in demo["incs"]["twitter"]["networks"]}


def test_7_measurements_are_listed_and_counted_from_the_store(demo):
    c = demo["c"]
    listing = c.get("/api/v1/measurements", params={"limit": 5}).json()
    assert listing["metadata"]["count"] == 5 and listing["metadata"]["total"] == demo["count"]
    uid = listing["results"][0]["measurement_uid"]
    assert c.get(f"/api/v1/measurement/{uid}").status_code == 200
    assert c.get("/api/v1/summary").json()["measurements"] == demo["count"]
    assert c.get("/api/v1/health").json()["measurements"] == demo["count"]
    assert f"{demo['count']} measurements stored" in html(c, "/").text
    by_asn = c.get("/api/v1/measurements", params={"probe_asn": "AS8359", "limit": 1}).json()["metadata"]
    assert 0 < by_asn["total"] < demo["count"]


def test_8_quic_blocking_is_shown_in_grid_incidents_and_statements(demo):
    c = demo["c"]
    page = html(c, "/country/RU").text
    quic = re.findall(r"data-service='twitter' data-asn='(AS\d+)' data-class='\w+' data-quic='1'", page)
    assert len(quic) == 3, quic
    assert "QUIC (HTTP/3) connections are blocked too on" in demo["incs"]["twitter"]["text"]
    page = html(c, f"/incident/{demo['incs']['twitter']['id']}").text
    assert "+ QUIC blocked from 11:00" in page


def test_9_verdicts_do_not_mix_direct_and_vpn_paths(demo):
    c = demo["c"]
    q = {"asn": "AS12389", "service": "twitter", "limit": 1}
    direct = c.get("/api/v1/verdicts", params=q).json()["results"][0]
    assert direct["path"] == "direct" and direct["class"] == "tls"
    vpn = c.get("/api/v1/verdicts", params=q | {"path": "vpn"}).json()["results"][0]
    assert vpn["path"] == "vpn" and vpn["class"] == "ok"
    both = c.get("/api/v1/verdicts", params=q | {"path": "any", "limit": 100}).json()["results"]
    assert {v["path"] for v in both} == {"direct", "vpn"}
    assert c.get("/api/v1/verdicts", params={"path": "tor"}).status_code == 400


def test_9_aggregates_and_pages_take_the_path_too(demo):
    """The timelines of a page can show the VPN path (circumvention over time); the grid and
    the default stay direct."""
    c = demo["c"]
    q = {"asn": "AS12389", "service": "twitter", "since": "2022-02-26 12:00", "bucket": "1d"}

    def counts(**extra):
        rows = c.get("/api/v1/aggregates", params=q | extra).json()["results"]
        out: dict[str, int] = {}
        for r in rows:
            for k, n in r["counts"].items():
                out[k] = out.get(k, 0) + n
        return out

    direct, vpn, every = counts(), counts(path="vpn"), counts(path="any")
    assert direct.get("tls", 0) > 0 and "tls" not in vpn and vpn.get("ok", 0) > 0
    assert every == {k: direct.get(k, 0) + vpn.get(k, 0) for k in set(direct) | set(vpn)}
    assert c.get("/api/v1/aggregates", params={"path": "tor"}).status_code == 400
    page = c.get("/network/AS12389", params={"path": "vpn"}, headers={"accept": "text/html"})
    assert page.status_code == 200 and "Every service over time, through a VPN" in page.text
    assert "<option value='vpn' selected>" in page.text
    assert "through a VPN</h2>" not in html(c, "/network/AS12389").text
    assert c.get("/country/RU", params={"path": "tor"}, headers={"accept": "text/html"}).status_code == 400


def test_10_old_data_is_dated_never_live(demo):
    text = demo["incs"]["twitter"]["text"]
    assert "26 February 2022" in text and "Live" not in text and "currently" not in text
    assert text.startswith("Metrics up to 13:30 UTC on 26 February 2022 show that Twitter")
    page = html(demo["c"], "/country/RU").text
    assert "data as of 13:30 UTC on 26 February 2022" in page and "id=stale" in page
    assert ">live" not in page and "ongoing</span>" not in page


# ---- errors -------------------------------------------------------------------------------


def test_missing_incident_is_an_html_page_for_a_browser_and_json_for_a_client(demo):
    c = demo["c"]
    page = html(c, "/incident/deadbeef")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "No incident &#x27;deadbeef&#x27;" in page.text
    api = c.get("/incident/deadbeef", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json()["detail"]


def test_unknown_country_is_404(demo):
    r = html(demo["c"], "/country/XX")
    assert r.status_code == 404 and "No measurements from XX" in r.text


@pytest.mark.parametrize("path,params,needle", [
    ("/api/v1/verdicts", {"limit": "0"}, "'limit' is 0"),
    ("/api/v1/incidents", {"offset": "-1"}, "'offset' is -1"),
    ("/api/v1/aggregates", {"limit": "x"}, "'limit' is 'x'"),
    ("/api/v1/incidents", {"ongoing": "maybe"}, "'ongoing'"),
    ("/api/v1/status", {"service": "nosuch"}, "known: bbc"),
])
def test_bad_parameters_are_400_naming_them(demo, path, params, needle):
    r = demo["c"].get(path, params=params)
    assert r.status_code == 400 and needle in r.json()["detail"], r.text


def test_plurals_and_the_control_vantage_label():
    from netvigil.report.text import place_label, plural

    assert plural(1, "network") == "1 network" and plural(2, "network") == "2 networks"
    assert place_label("ZZ") == "Control vantage (no country)" and place_label("RU") == "Russia (RU)"


# ---- read API -----------------------------------------------------------------------------


def test_cors_head_etag_and_chart_cache(demo):
    from netvigil.report.chart import CACHE

    c = demo["c"]
    pre = c.options("/api/v1/incidents", headers={"origin": "https://news.example",
                                                  "access-control-request-method": "GET"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
    r = c.get("/api/v1/status", params={"country": "RU"})
    assert r.headers["access-control-allow-origin"] == "*" and "max-age" in r.headers["cache-control"]
    again = c.get("/api/v1/status", params={"country": "RU"}, headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304
    assert c.head("/").status_code == 200 and c.head("/api/v1/incidents").status_code == 200
    iid = demo["incs"]["facebook"]["id"]
    first = c.get(f"/api/v1/incidents/{iid}/chart.png").content
    hits = CACHE.hits
    assert c.get(f"/api/v1/incidents/{iid}/chart.png").content == first and CACHE.hits == hits + 1


def test_lists_give_totals_and_filter(demo):
    c = demo["c"]
    meta = c.get("/api/v1/verdicts", params={"country": "RU", "limit": 10}).json()["metadata"]
    assert meta["count"] == 10 and meta["total"] > 10
    tls = c.get("/api/v1/incidents", params={"technique": "dns"}).json()
    assert [i["service"] for i in tls["results"]] == ["facebook"] and tls["metadata"]["total"] == 1
    one = c.get("/api/v1/incidents", params={"asn": "AS3216", "since": "2022-02-26 11:45"}).json()["results"]
    assert {i["service"] for i in one} == {"twitter", "facebook"}


# ---- pages --------------------------------------------------------------------------------


def test_measurement_page_shows_verdict_rules_and_steps(demo):
    uid = demo["incs"]["facebook"]["evidence"]["measurement_uids"][0]
    page = html(demo["c"], f"/measurement/{uid}").text
    assert "id=verdict" in page and "rules version" in page
    for step in ("DNS", "TCP connect", "TLS handshake"):
        assert f"<h3>{step}</h3>" in page
    assert re.search(r"\d+ ms", page) and "127.0.0.1" not in page  # timings; never the probe's address


def test_network_and_service_pages(demo):
    net = html(demo["c"], "/network/AS12389")
    assert net.status_code == 200 and "Rostelecom (AS12389)" in net.text
    assert {"twitter", "facebook", "control"} <= set(re.findall(r"data-service='(\w+)'", net.text))
    svc = html(demo["c"], "/service/twitter")
    assert svc.status_code == 200 and all(n in svc.text for n in ("Rostelecom", "MTS", "Beeline"))
    assert html(demo["c"], "/network/AS1").status_code == 404
    assert html(demo["c"], "/service/nosuch").status_code == 404


def test_incident_page_embeds_the_chart_with_credit_and_permalink(demo):
    iid = demo["incs"]["twitter"]["id"]
    page = html(demo["c"], f"/incident/{iid}").text
    assert "Embed this chart" in page and f"/api/v1/incidents/{iid}/chart.svg" in page
    svg = demo["c"].get(f"/api/v1/incidents/{iid}/chart.svg").text
    assert "Source: netvigil observatory" in svg and f"/incident/{iid}" in svg
    assert "throttled \u2192 TLS reset" in svg  # the 12:00 change of technique is marked


def test_timelines_scale_and_have_a_legend(demo):
    page = html(demo["c"], "/country/RU").text
    assert "class=legend" in page and "slowed (throttled)" in page
    assert not re.search(r"<svg class=timeline[^>]* width=\d", page)  # no fixed-width SVGs
    assert "tl-change" in page


def test_unchanged_refresh_has_the_same_hash(demo):
    a = demo["c"].get("/country/RU", params={"fragment": 1})
    b = demo["c"].get("/country/RU", params={"fragment": 1})
    assert a.headers["x-content-hash"] == b.headers["x-content-hash"]
    page = html(demo["c"], "/country/RU").text
    assert f"data-hash='{a.headers['x-content-hash']}'" in page and "aria-live=polite" in page


def test_docs_are_served_from_local_assets(demo):
    c = demo["c"]
    page = c.get("/docs")
    assert page.status_code == 200 and "http" not in page.text  # no CDN: every asset is ours
    for src in re.findall(r"(?:src|href)='(/docs/assets/[^']+)'", page.text):
        asset = c.get(src)
        assert asset.status_code == 200 and len(asset.content) > 500, src
    assert c.get("/openapi.json").json()["paths"]["/api/v1/verdicts"]


def test_stored_count_is_kept_per_app():
    """The stored count is cached per app: two observatories in one process (tests, a
    notebook) with the same analysed total never read each other's count."""
    import asyncio
    from types import SimpleNamespace

    from netvigil.report.api import stored_count

    from netvigil.analysis.reads import MeasurementPage

    def app_with(n: int):
        async def measurement_index(**kw):
            assert kw == {"limit": 0}
            return MeasurementPage(n, [])
        class App:  # what stored_count reads of the app's Observatory
            collector = SimpleNamespace(index={}, stored=0)
            pump = SimpleNamespace(ready=True, analysed=7)  # the store is open (pump.ready, 679593c)
            reads = SimpleNamespace(measurement_index=measurement_index)
        return App()

    a, b = app_with(0), app_with(384)
    assert asyncio.run(stored_count(a)) == 0
    assert asyncio.run(stored_count(b)) == 384
    assert asyncio.run(stored_count(a)) == 0
