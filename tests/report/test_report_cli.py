"""`netvigil report`, `subscribe` and `serve` from the command line, as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirun import CliResult, run_cli
from tests.recorded_store import copy_of_run_store

RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022"


def netvigil(*args: str) -> CliResult:
    """`netvigil ARGS` in this process (tests/clirun.py); serve's bad port is the one subprocess."""
    return run_cli(*args)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """An observatory data dir whose store holds a recorded lab run of russia-2022."""
    d = tmp_path_factory.mktemp("obs")
    fill_with_run(d / "store")
    return d


def fill_with_run(store: Path) -> None:
    """An Observatory store at `store` holding the recorded russia-2022 run, round by round
    (a copy of one filled once per test process: tests/recorded_store.py)."""
    copy_of_run_store(RUN, store)


def incident_id(data_dir: Path) -> str:
    from netvigil.analysis.analysed_store import AnalysedStore

    obs = AnalysedStore(data_dir / "store")
    try:
        return next(i.id for i in obs.incidents(country="RU") if i.service == "twitter")
    finally:
        obs.close()


def outages(data_dir: Path) -> list:
    from netvigil.analysis.analysed_store import AnalysedStore

    obs = AnalysedStore(data_dir / "store")
    try:
        return [i for i in obs.incidents(country="RU") if i.kind == "outage"]
    finally:
        obs.close()


@pytest.fixture(scope="module")
def local_report(data_dir, tmp_path_factory) -> tuple[str, CliResult, Path]:
    """(twitter's incident id, `netvigil report ID --data-dir`, its --out-dir): run once, read
    by the test of its files and by the test comparing it with the report over HTTP."""
    iid = incident_id(data_dir)
    out = tmp_path_factory.mktemp("local-report")
    return iid, netvigil("report", iid, "--data-dir", str(data_dir), "--out-dir", str(out)), out


def test_report_writes_text_chart_and_json(local_report):
    iid, r, out = local_report
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Metrics up to 13:30 UTC on 26 February 2022 show that Twitter") and "Russia" in r.stdout
    files = {p.suffix: p for p in out.iterdir()}
    assert set(files) == {".txt", ".svg", ".png", ".json"}
    assert files[".png"].read_bytes()[:4] == b"\x89PNG"
    assert "onset 09:00 UTC" in files[".svg"].read_text()
    assert "changed from slowing it down (to about " in r.stdout and "kbit/s) to cutting secure" in r.stdout
    rate = int(r.stdout.split("(to about ")[1].split(" kbit/s")[0])
    assert 104 <= rate <= 156, "the lab throttled at 130 kbit/s: the measured rate is within 20%"
    body = json.loads(files[".json"].read_text())
    assert body["id"] == iid and body["text"] == r.stdout.strip()


def test_report_over_http_matches(data_dir, local_report, tmp_path):
    from netvigil.observatory.serve import ObservatoryThread

    iid, local, _ = local_report
    outage = next(i.id for i in outages(data_dir))
    # the analysis as a thread: the statement over HTTP is the point, not the analysis process
    # (tests/observatory/test_analysis_process.py, tests/test_fuzz_all_routes.py serve that)
    with ObservatoryThread(data_dir, analysis_process=False) as obs:
        import httpx, time

        with httpx.Client() as c:  # one client for every poll: httpx.get() builds an SSL context each call
            for _ in range(200):  # wait for the pump to open the store
                if c.get(f"{obs.url}/api/v1/health").json()["analysis"] == "running":
                    break
                time.sleep(0.05)
        r = netvigil("report", iid, "--url", obs.url, "--out-dir", str(tmp_path))
        o = netvigil("report", outage, "--url", obs.url, "--out-dir", str(tmp_path / "outage"))
        from netvigil.cli.observatory import _fetch_incident

        _, whole, _ = _fetch_incident(obs.url, iid)
        _, paged, _ = _fetch_incident(obs.url, iid, page_size=7)  # followed next_url page by page
        assert len(whole) > 7 and paged == whole
    assert r.returncode == 0, r.stderr
    assert local.returncode == 0, local.stderr
    assert r.stdout == local.stdout, "the statement over HTTP is the one from the store"
    assert "Circumvention was possible using VPN services." in r.stdout  # the data is from 2022: not "currently"
    assert o.returncode == 0, o.stderr  # an outage (service "*") over HTTP
    assert "Network outage on Beeline (AS3216)" in (tmp_path / "outage" / f"{outage}.svg").read_text()
    assert "Beeline (AS3216)" in o.stdout


def test_report_errors_are_one_line(data_dir, tmp_path):
    for args, needle in ((["report", "nope", "--data-dir", str(data_dir)], "not found"),
                         (["report", "x", "--data-dir", str(tmp_path / "missing")], "no observatory store"),
                         (["report", "x", "--url", "http://127.0.0.1:9"], "cannot read incident")):
        r = netvigil(*args)
        assert r.returncode != 0 and needle in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_subscribe_add_list_remove(tmp_path):
    (tmp_path / "hook.secret").write_text("s\n")
    r = netvigil("subscribe", "http://127.0.0.1:9000/hook", "--secret-file", str(tmp_path / "hook.secret"),
                 "--country", "ru", "--event", "start", "--event", "end", "--data-dir", str(tmp_path),
                 "--allow-private-webhooks")
    assert r.returncode == 0 and "subscribed" in r.stdout, r.stderr
    listed = [json.loads(line) for line in netvigil("subscribe", "--list", "--data-dir", str(tmp_path)).stdout.splitlines()]
    assert listed[0]["country"] == "RU" and listed[0]["events"] == ["start", "end"] and listed[0]["signed"]
    assert netvigil("subscribe", "--remove", listed[0]["id"], "--data-dir", str(tmp_path)).returncode == 0
    assert netvigil("subscribe", "--list", "--data-dir", str(tmp_path)).stdout == ""
    bad = netvigil("subscribe", "http://x/h", "--event", "sometimes", "--data-dir", str(tmp_path))
    assert bad.returncode == 2 and "unknown event" in bad.stderr


def test_serve_help_has_an_example_and_bad_port_is_one_line():
    for cmd in ("serve", "report", "subscribe"):
        assert "Example:" in netvigil(cmd, "--help").stdout
    assert re.search(r"netvigil report [0-9a-f]{16} ", netvigil("report", "--help").stdout), "a real-looking id"
    r = subprocess.run([sys.executable, "-m", "netvigil", "serve", "--port", "70000"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "out of range" in r.stderr and "Traceback" not in r.stderr


def test_serve_shows_a_store_written_directly_by_the_observatory(tmp_path):
    """`netvigil demo` and `analyse` open an Observatory on DATA_DIR itself: serve must show it."""
    import time

    import httpx

    from netvigil.observatory.serve import ObservatoryThread

    fill_with_run(tmp_path)
    with ObservatoryThread(tmp_path, analysis_process=False) as srv:  # the same store_dir either way
        with httpx.Client() as c:  # one client for every poll: httpx.get() builds an SSL context each call
            for _ in range(300):
                if c.get(f"{srv.url}/api/v1/health").json()["analysis"] == "running":
                    break
                time.sleep(0.05)
            incs = c.get(f"{srv.url}/api/v1/incidents", params={"country": "RU"}, timeout=60).json()["results"]
            uid = incs[0]["evidence"]["measurement_uids"][0]
            raw = c.get(f"{srv.url}/api/v1/measurement/{uid}", timeout=60)
    assert {i["service"] for i in incs} == {"twitter", "facebook", "*"}
    assert raw.status_code == 200 and raw.json()["measurement_uid"] == uid
