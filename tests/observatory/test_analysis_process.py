"""The analysis process: it follows what arrives, and dies with the service, its judge worker
too (no orphan)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from netvigil.observatory.app import create_app
from netvigil.observatory.serve import free_port

M = {"test_name": "netvigil_service", "measurement_start_time": "2022-02-26 09:00:00", "probe_cc": "RU",
     "probe_asn": "AS12389", "input": "https://twitter.com/", "annotations": {"service": "twitter"}, "test_keys": {}}


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_analysis_process_exits_when_the_service_is_killed(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "netvigil", "serve", "--port", str(port), "--data-dir",
                             str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        with httpx.Client() as c:  # one client for every poll: httpx.get() builds an SSL context each call
            while time.monotonic() < deadline:
                try:
                    if c.get(f"http://127.0.0.1:{port}/api/v1/health").json()["analysis"] == "running":
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                raise AssertionError("analysis did not start")
        kids = [p for p in children(proc.pid) if alive(p)]
        assert kids, "the analysis runs in a child process"
        if (os.cpu_count() or 1) >= 2:  # and judges in a grandchild (judge_worker.py)
            deadline = time.monotonic() + 30
            while not [g for k in kids for g in children(k)] and time.monotonic() < deadline:
                time.sleep(0.1)
            workers = [g for k in kids for g in children(k) if alive(g)]
            assert workers, "the judge worker runs beside the analysis"
            kids += workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(alive(p) for p in kids):
            time.sleep(0.1)
        assert not any(alive(p) for p in kids), "the analysis process outlived the service"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("process", [True, False], ids=["process", "thread"])
def test_both_modes_analyse_what_arrives(tmp_path, process):
    # one anonymous client: its word is published only with a quorum of 1 (analysis/incidents/quorum.py)
    app = create_app(tmp_path, analysis_process=process, analysis_interval=0.1, quorum=1)
    with TestClient(app) as c:
        rid = c.post("/report", json={}).json()["report_id"]
        assert c.post(f"/report/{rid}", json={"format": "json", "content": M}).status_code == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and app.state.nv.pump.analysed < 1:
            time.sleep(0.05)
        assert app.state.nv.pump.analysed == 1
        rows = c.get("/api/v1/status", params={"asn": "AS12389"}).json()["results"]
        assert {r["service"] for r in rows} == {"twitter"}
        assert c.get("/api/v1/verdicts", params={"country": "RU"}).json()["metadata"]["count"] == 1
        assert c.get("/api/v1/aggregates", params={"bucket": "nonsense"}).status_code == 400
