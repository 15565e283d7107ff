"""Regenerate docs/screenshots/: every dashboard page at 1400 px and 390 px (needs root).

The russia-2022 recorded lab run (tests/data/lab) is written to a collector log, served by
`netvigil serve` inside a loopback-only network namespace and photographed by Debian's
Chromium in that namespace (tests/browser/harness.py: nothing leaves the machine). Each
page is also checked as the browser tests check it (no horizontal scroll, no serious
axe-core violation); problems are printed and make the exit status 1.

    sudo .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.browser.harness import SAFE_ARGS, axe_violations, horizontal_overflow, netns, observatory, write_log  # noqa: E402

RUN = ROOT / "tests" / "data" / "lab" / "russia-2022"
PORT = 8479
WIDTHS = (1400, 390)


def page_urls(browser, url: str) -> dict[str, str]:
    page = browser.new_page()
    page.goto(f"{url}/api/v1/incidents?country=RU")
    incs = page.evaluate("JSON.parse(document.body.innerText).results")
    page.close()
    twitter = next(i for i in incs if i["service"] == "twitter")
    outage = next(i for i in incs if i["kind"] == "outage")
    return {"home": "/", "country": "/country/RU", "incident": f"/incident/{twitter['id']}",
            "outage": f"/incident/{outage['id']}", "network": "/network/AS12389", "service": "/service/twitter",
            "incidents": "/incidents", "measurement": f"/measurement/{twitter['evidence']['measurement_uids'][-1]}",
            "not_found": "/incident/deadbeef", "docs": "/docs"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("screenshots: needs root and `ip` (a loopback-only network namespace)", file=sys.stderr)
        return 2
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        print("screenshots: needs Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from netvigil.report.replay import load_run

    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nv-shots-") as tmp:
        data_dir = Path(tmp) / "obs"
        write_log(data_dir, load_run(RUN))
        with netns(chromium, Path(tmp)) as (ns, wrapper), observatory(ns, data_dir, PORT) as url, \
                sync_playwright() as p:
            browser = p.chromium.launch(executable_path=wrapper, args=SAFE_ARGS)
            for name, path in page_urls(browser, url).items():
                for width in WIDTHS:
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    page.goto(url + path)
                    page.wait_for_load_state("networkidle")
                    if horizontal_overflow(page) > 0:
                        problems.append(f"{name} at {width}px: {horizontal_overflow(page)} px of horizontal scroll")
                    if name != "docs":  # Swagger UI's own markup is not ours to fix
                        problems += [f"{name} at {width}px: axe {v['impact']} {v['id']}" for v in axe_violations(page)]
                    shot = args.out / f"{name}-{width}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    print(f"wrote {shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot}")
                    page.close()
            browser.close()
    for line in problems:
        print("problem:", line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
