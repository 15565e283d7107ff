"""kill -9 of `netvigil serve` during a load run loses no acknowledged measurement.

A real server process on loopback; several client threads submit (single OONI-protocol
submissions and JSONL batches) and record every uid the server acknowledged; the server
is SIGKILLed mid-run and the app is opened again on the same data dir; every acknowledged
uid must be served again. Also: a torn last log line (crash mid-write) is cut on replay.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from netvigil.collector.log import MeasurementLog
from netvigil.observatory.app import create_app
from netvigil.observatory.serve import free_port

TOKEN = "probe-token-durability"


def start_server(data_dir, port) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "netvigil", "serve", "--port", str(port), "--data-dir", str(data_dir),
         "--no-analysis"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "NETVIGIL_PROBE_TOKENS": TOKEN},
    )
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=1) as c:  # one client for every poll: httpx.get() builds an SSL context each call
        while time.monotonic() < deadline:
            try:
                if c.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200:
                    return proc
            except httpx.HTTPError:
                time.sleep(0.1)
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode())
    proc.kill()
    raise AssertionError("server did not start")


def measurement(worker: int, i: int) -> dict:
    return {"test_name": "netvigil_service", "measurement_start_time": f"2022-02-26 09:{i // 60 % 60:02d}:{i % 60:02d}",
            "probe_cc": "RU", "probe_asn": f"AS{1000 + worker}", "input": f"https://twitter.com/{worker}/{i}",
            "annotations": {"service": "twitter"}, "test_keys": {"worker": worker, "i": i}}


def load(url: str, worker: int, acked: list[str], stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(timeout=5, headers=headers) as c:
        try:
            rid = c.post(f"{url}/report", json={"test_name": "netvigil_service"}).json()["report_id"]
        except httpx.HTTPError:
            return
        i = 0
        while not stop.is_set() and i < 200_000:
            try:
                if worker % 2:
                    r = c.post(f"{url}/report/{rid}", json={"format": "json", "content": measurement(worker, i)})
                    if r.status_code == 200:
                        acked.append(r.json()["measurement_uid"])
                    i += 1
                else:
                    body = "\n".join(json.dumps(measurement(worker, i + k)) for k in range(50))
                    r = c.post(f"{url}/api/v1/submit", content=body)
                    if r.status_code == 200:
                        acked.extend(r.json()["measurement_uids"])
                    i += 50
            except httpx.HTTPError:
                return  # the server died: what was acknowledged is in `acked`


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_measurement(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(tmp_path / "obs", port)
    acked: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(url, w, acked, stop)) for w in range(4)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while len(acked) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 2000, "the load run acknowledged too little to be a test"
    # the restart on the same data dir: the same app `serve` runs, opened in this process
    # (the kill -9 above is what needs a process; a second one would only add its start, ~1 s)
    app = create_app(tmp_path / "obs", analysis=False, probe_tokens={TOKEN})
    with TestClient(app) as c:
        health = c.get("/api/v1/health").json()
        assert health["measurements"] >= len(set(acked))
        stored: set[str] = set()
        next_url = "/api/v1/measurements?limit=10000"
        while next_url:
            page = c.get(next_url).json()
            stored.update(r["measurement_uid"] for r in page["results"])
            next_url = page["metadata"]["next_url"]
        lost = set(acked) - stored
        assert not lost, f"{len(lost)} acknowledged measurements lost, e.g. {sorted(lost)[:3]}"
        one = c.get(f"/api/v1/measurement/{acked[-1]}").json()
        assert one["measurement_uid"] == acked[-1]


def test_torn_tail_is_cut_on_replay(tmp_path):
    log = MeasurementLog(tmp_path)
    log.append([b'{"measurement_uid":"a"}', b'{"measurement_uid":"b"}']).result(timeout=5)
    log.close()
    seg = next(tmp_path.glob("seg-*.jsonl"))
    with open(seg, "ab") as f:
        f.write(b'{"measurement_uid":"tor')  # crash mid-write: never acknowledged
    log = MeasurementLog(tmp_path)
    lines = [line for _, line in log.scan()]
    assert lines == [b'{"measurement_uid":"a"}', b'{"measurement_uid":"b"}']
    pos = log.append([b'{"measurement_uid":"c"}']).result(timeout=5)[0]
    assert log.read(pos) == b'{"measurement_uid":"c"}'
    log.close()


def test_the_log_end_is_never_past_its_segment_during_a_rotation(tmp_path, monkeypatch):
    """end() is read on other threads (the web sends it to the analysis): seen in the middle
    of a rotation (here: as it opens the next segment) it must still be a committed end. It
    was two fields, and between the segment's increment and the size's reset it read (new
    segment, old size): a position past the new, empty segment's end, which the analysis
    took as reached (a whole segment skipped)."""
    import netvigil.collector.log as log_module

    log = MeasurementLog(tmp_path, segment_bytes=100)
    seen: list[tuple[tuple[int, int], int]] = []  # (end(), its segment's size) at that moment
    real_open = os.open

    def open_seeing_the_end(path, *args, **kwargs):  # the rotation opens the next segment: end() now
        if str(path).endswith(".jsonl"):
            end = log.end()
            file = tmp_path / f"seg-{end[0]:08d}.jsonl"
            seen.append((end, file.stat().st_size if file.exists() else 0))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(log_module.os, "open", open_seeing_the_end)
    for i in range(30):
        log.append([f'{{"i":{i}}}'.encode()]).result(timeout=5)
    log.close()
    assert len(seen) >= 2, "the log rotated"
    for (seg, offset), size in seen:
        assert offset <= size, f"end() said ({seg}, {offset}) while segment {seg} held {size} bytes"


def test_log_rotates_segments_and_scans_across_them(tmp_path):
    log = MeasurementLog(tmp_path, segment_bytes=100)
    for i in range(30):
        log.append([f'{{"i":{i}}}'.encode()]).result(timeout=5)
    assert len(log.segments) > 1
    assert [json.loads(line)["i"] for _, line in log.scan()] == list(range(30))
    assert [json.loads(line)["i"] for _, line in log.scan(limit=5)] == list(range(5))
    log.close()
