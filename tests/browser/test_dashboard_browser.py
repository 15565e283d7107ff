"""The dashboard in real headless Chromium (Debian's), isolated in a loopback-only namespace.

The observatory server and Chromium both run inside a network namespace that has only
`lo`, so neither can reach anything else; Chromium also gets host-resolver rules that map
every name to NOTFOUND. Playwright talks to Chromium over a pipe. Data: a recorded lab
run of russia-2022 (tests/data/lab), rounds before 11:00 in the log before start (replayed
by the server), the rest submitted while the page is open, to see the grid update live.
Screenshots land in $NETVIGIL_SCREENSHOTS (default /tmp/netvigil-screenshots) for a human to look at.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netvigil.collector import intake
from netvigil.collector.log import MeasurementLog
from netvigil.report.replay import load_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022"
SPLIT = "2022-02-26 11:00:00"
SHOTS = Path(os.environ.get("NETVIGIL_SCREENSHOTS", "/tmp/netvigil-screenshots"))
SAFE_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
             "--disable-background-networking", "--disable-component-update", "--no-sandbox"]
PORT = 8471


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def netns(chromium_path, tmp_path_factory):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        from conftest import missing_or_fail

        missing_or_fail("root and `ip` for a loopback-only network namespace")
    name = f"nvobs-{os.getpid()}"
    run("ip", "netns", "add", name)
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        wrapper = tmp_path_factory.mktemp("chromium") / "chromium-in-netns"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {name} {chromium_path} "$@"\n')
        wrapper.chmod(0o755)
        yield name, str(wrapper)
    finally:
        subprocess.run(["ip", "netns", "pids", name], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def write_log(data_dir: Path, measurements) -> None:
    log = MeasurementLog(data_dir / "log")
    lines = []
    for m in measurements:
        lines.append(intake.accept(intake.encode(m)).line)
    log.append(lines).result(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def server(netns, tmp_path_factory):
    ns, _ = netns
    data_dir = tmp_path_factory.mktemp("obs")
    ms = load_run(RUN)
    write_log(data_dir, [m for m in ms if m.measurement_start_time < SPLIT])
    phase2 = data_dir.parent / "phase2.jsonl"
    phase2.write_bytes(b"".join(intake.encode(m) + b"\n" for m in ms if m.measurement_start_time >= SPLIT))
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "netvigil", "serve", "--port", str(PORT),
                             "--data-dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "NETVIGIL_PROBE_TOKENS": "p"})
    url = f"http://127.0.0.1:{PORT}"
    probe = f"import httpx,sys; sys.exit(0 if httpx.get('{url}/api/v1/incidents').status_code == 200 and httpx.get('{url}/api/v1/incidents').json()['results'] else 1)"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())
        if subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", probe], capture_output=True).returncode == 0:
            break
        time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError("observatory in the namespace did not analyse the log")
    yield {"url": url, "ns": ns, "phase2": phase2}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser(netns):
    from playwright.sync_api import sync_playwright

    _, wrapper = netns
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
    submit = (f"import msgspec,sys; from netvigil.collector.client import submit_measurements as s; "
              f"from netvigil.model.measurement import Measurement as M; "
              f"ms=[msgspec.json.decode(l, type=M) for l in open('{server['phase2']}','rb')]; "
              f"r=s('{server['url']}', ms, token='p'); sys.exit(0 if r.submitted == len(ms) else 1)")
    subprocess.run(["ip", "netns", "exec", server["ns"], sys.executable, "-c", submit], check=True)
    page.wait_for_function(  # Twitter on Rostelecom: throttled, then resets from 12:00
        "document.querySelector('td.cell[data-service=twitter][data-asn=AS12389]').dataset.class === 'tls'",
        timeout=120_000)
    assert int(page.evaluate("document.body.dataset.updates || '0'")) >= 1
    assert page.locator("td.cell[data-service=twitter][data-asn=AS12389]").inner_text() == "TLS reset"
    marks = page.locator("svg.timeline[data-service=twitter] .tl-outage")
    assert [marks.nth(i).text_content() for i in range(marks.count())] == ["outage 10:30", "restored 11:30"]
    page.screenshot(path=str(SHOTS / "country_after.png"), full_page=True)
    page.close()


def test_incident_page_shows_statement_networks_and_evidence(server, browser):
    page = browser.new_page(viewport={"width": 1200, "height": 1200})
    page.goto(f"{server['url']}/")
    assert "Russia" in page.locator("#countries").inner_text()
    page.goto(f"{server['url']}/country/RU")
    page.locator("ul.incidents a", has_text="Twitter").first.click()
    page.wait_for_selector("#statement")
    assert "Live metrics show that Twitter" in page.locator("#statement").inner_text()
    nets = page.locator("#networks").inner_text()
    assert "throttled.targeted" in nets and "tls.reset_after_hello" in nets and "MTS" in nets and "Beeline" in nets
    assert "works" in (page.locator("#circumvention").get_attribute("class") or "")
    assert "censorship" in page.locator("#kind").inner_text()
    uids = page.locator("#evidence ul.uids a")
    assert uids.count() > 0
    page.wait_for_function("document.getElementById('chart').complete && document.getElementById('chart').naturalWidth > 0",
                           timeout=30_000)
    page.screenshot(path=str(SHOTS / "incident.png"), full_page=True)
    uids.first.click()
    assert '"measurement_uid"' in page.content()
    page.close()
