"""The dashboard in real headless Chromium (Debian's), isolated in a loopback-only namespace.

The observatory server and Chromium both run inside a network namespace that has only
`lo` (tests/browser/harness.py). Data: a recorded lab run of russia-2022 (tests/data/lab),
rounds before 11:00 in the log before start (replayed by the server), the rest submitted
while the page is open, to see the grid update live. Then every page at 1400 px and 390 px:
no horizontal scroll, every evidence link resolves, no serious axe-core violation (WCAG 2.1
AA, offline), and keyboard focus in the grid survives refreshes that bring nothing new.
Screenshots land in $NETVIGIL_SCREENSHOTS (default /tmp/netvigil-screenshots).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netvigil.report.replay import load_run
from tests.browser.harness import SAFE_ARGS, axe_violations, horizontal_overflow, netns, observatory, write_log

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022"
SPLIT = "2022-02-26 11:00:00"
SHOTS = Path(os.environ.get("NETVIGIL_SCREENSHOTS", "/tmp/netvigil-screenshots"))
PORT = 8471
WIDTHS = (1400, 390)


@pytest.fixture(scope="module")
def ns(chromium_path, tmp_path_factory):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        from conftest import missing_or_fail

        missing_or_fail("root and `ip` for a loopback-only network namespace")
    with netns(chromium_path, tmp_path_factory.mktemp("chromium")) as pair:
        yield pair


@pytest.fixture(scope="module")
def server(ns, tmp_path_factory):
    name, _ = ns
    data_dir = tmp_path_factory.mktemp("obs")
    ms = load_run(RUN)
    write_log(data_dir, [m for m in ms if m.measurement_start_time < SPLIT])
    from netvigil.collector import intake

    phase2 = data_dir.parent / "phase2.jsonl"
    phase2.write_bytes(b"".join(intake.encode(m) + b"\n" for m in ms if m.measurement_start_time >= SPLIT))
    with observatory(name, data_dir, PORT) as url:
        yield {"url": url, "ns": name, "phase2": phase2}


@pytest.fixture(scope="module")
def browser(ns):
    from playwright.sync_api import sync_playwright

    _, wrapper = ns
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=wrapper, args=SAFE_ARGS)
        yield b
        b.close()


def test_country_page_grid_timeline_and_live_update(server, browser):
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(f"{server['url']}/country/RU")
    grid = page.locator("#grid")
    assert "Rostelecom" in grid.inner_text() and "MegaFon" in grid.inner_text()
    fb = page.locator("td.cell[data-service=facebook][data-asn=AS8359]")
    assert fb.get_attribute("data-class") == "dns" and fb.inner_text() == "DNS block page"
    assert page.locator("td.cell[data-service=facebook][data-asn=AS9049]").inner_text() == "TLS MITM"
    tw = page.locator("td.cell[data-service=twitter][data-asn=AS12389]")
    assert tw.get_attribute("data-class") == "throttled" and tw.inner_text() == "throttled"
    assert page.locator("td.cell[data-service=control][data-asn=AS12389]").get_attribute("data-class") == "ok"
    tl = page.locator("svg.timeline[data-service=twitter]")
    assert tl.locator("rect.throttled").count() > 0 and tl.locator("rect.ok").count() > 0
    assert "onset 09:00" in tl.locator(".tl-onset-label").first.text_content()
    box = tl.bounding_box()
    assert box and box["width"] > 500  # rendered, not collapsed
    page.screenshot(path=str(SHOTS / "country_during.png"), full_page=True)
    # phase 2 arrives while the page is open: the cell turns ok without a reload
    submit = (f"import msgspec,sys; from netvigil.probe.client import submit_measurements as s; "
              f"from netvigil.model.measurement import Measurement as M; "
              f"ms=[msgspec.json.decode(l, type=M) for l in open('{server['phase2']}','rb')]; "
              f"r=s('{server['url']}', ms, token='p'); sys.exit(0 if r.submitted == len(ms) else 1)")
    page.locator("td.cell[data-service=twitter][data-asn=AS12389] a").focus()  # a keyboard user is on this cell
    subprocess.run(["ip", "netns", "exec", server["ns"], sys.executable, "-c", submit], check=True)
    page.wait_for_function(  # Twitter on Rostelecom: throttled, then resets from 12:00
        "document.querySelector('td.cell[data-service=twitter][data-asn=AS12389]').dataset.class === 'tls'",
        timeout=120_000)
    assert int(page.evaluate("document.body.dataset.updates || '0'")) >= 1
    # the grid was replaced: focus is back on the same cell (its new link), not lost to <body>
    assert page.evaluate("document.activeElement.closest('td.cell').dataset.key") == "twitter|AS12389"
    assert page.locator("td.cell[data-service=twitter][data-asn=AS12389]").inner_text().startswith("TLS reset")
    marks = page.locator("svg.timeline[data-service=twitter] .tl-outage")
    assert [marks.nth(i).text_content() for i in range(marks.count())] == ["outage 10:30", "restored 11:30"]
    assert "throttled \u2192 TLS reset 12:00" in page.locator("svg.timeline[data-service=twitter] .tl-change").first.text_content()
    page.screenshot(path=str(SHOTS / "country_after.png"), full_page=True)
    page.close()


def test_incident_page_shows_statement_networks_and_evidence(server, browser):
    page = browser.new_page(viewport={"width": 1200, "height": 1200})
    page.goto(f"{server['url']}/")
    assert "Russia" in page.locator("#countries").inner_text()
    page.goto(f"{server['url']}/country/RU")
    page.locator("ul.incidents a", has_text="Twitter").first.click()
    page.wait_for_selector("#statement")
    assert "show that Twitter" in page.locator("#statement").inner_text()
    nets = page.locator("#networks").inner_text()
    assert "throttled" in nets and "tls.reset_after_hello" in nets and "MTS" in nets and "Beeline" in nets
    assert "works" in (page.locator("#circumvention").get_attribute("class") or "")
    assert "censorship" in page.locator("#kind").inner_text()
    uids = page.locator("#evidence ul.uids a")
    assert uids.count() > 0
    page.wait_for_function("document.getElementById('chart').complete && document.getElementById('chart').naturalWidth > 0",
                           timeout=60_000)
    uids.first.click()
    page.wait_for_selector("#verdict")
    assert "TLS handshake" in page.content() and "rules version" in page.content()
    page.close()


def pages(server, browser) -> dict[str, str]:
    """Every kind of page, by name -> URL (incident and measurement ids from the API)."""
    page = browser.new_page()
    page.goto(f"{server['url']}/api/v1/incidents?country=RU")
    incs = page.evaluate("JSON.parse(document.body.innerText).results")
    page.close()
    twitter = next(i for i in incs if i["service"] == "twitter")
    outage = next(i for i in incs if i["kind"] == "outage")
    u = server["url"]
    return {"home": f"{u}/", "country": f"{u}/country/RU", "incident": f"{u}/incident/{twitter['id']}",
            "outage": f"{u}/incident/{outage['id']}", "network": f"{u}/network/AS12389",
            "service": f"{u}/service/twitter", "incidents": f"{u}/incidents",
            "measurement": f"{u}/measurement/{twitter['evidence']['measurement_uids'][-1]}",
            "not_found": f"{u}/incident/deadbeef", "about": f"{u}/about"}


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_resolves_its_evidence_and_passes_axe(server, browser, width):
    problems = []
    for name, url in pages(server, browser).items():
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(url)
        page.wait_for_load_state("load")
        if horizontal_overflow(page) > 0:
            problems.append(f"{name} at {width}px: {horizontal_overflow(page)} px of horizontal scroll")
        for v in axe_violations(page):
            problems.append(f"{name} at {width}px: axe {v['impact']} {v['id']} ({v['help']}) at {v['nodes']}")
        if name == "incident":
            hrefs = page.eval_on_selector_all("#evidence a", "els => els.map(a => a.href)")
            assert len(hrefs) > 1
            for href in hrefs:
                status = page.evaluate("u => fetch(u, {method: 'HEAD'}).then(r => r.status)", href)
                if status != 200:
                    problems.append(f"evidence link {href}: {status}")
        page.screenshot(path=str(SHOTS / f"{name}_{width}.png"), full_page=True)
        page.close()
    assert not problems, "\n".join(problems)


def test_keyboard_focus_in_the_grid_survives_refreshes(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{server['url']}/country/RU")
    for _ in range(60):  # Tab into the grid, as a keyboard user does
        page.keyboard.press("Tab")
        if page.evaluate("!!(document.activeElement && document.activeElement.closest('#grid td.cell'))"):
            break
    else:
        raise AssertionError("the grid cells are not reachable by keyboard")
    page.keyboard.press("Tab")  # the next cell
    key = page.evaluate("document.activeElement.closest('td.cell').dataset.key")
    page.evaluate("window.__focused = document.activeElement")
    checks = int(page.evaluate("document.body.dataset.checks || '0'"))
    page.wait_for_function(f"parseInt(document.body.dataset.checks || '0', 10) >= {checks + 2}", timeout=30_000)
    assert page.evaluate("document.activeElement === window.__focused"), "focus was dropped by a refresh"
    assert page.evaluate("document.activeElement.closest('td.cell').dataset.key") == key
    assert page.locator("#announce[aria-live=polite]").count() == 1
    page.close()
