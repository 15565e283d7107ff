"""The recorded russia-2022 run submitted live to one observatory on loopback, for the two
test modules that read it: test_report_lab_russia.py (what the API, dashboard and alerts say
after the whole run) and test_report_live.py (alerts, the status during the block, the API).

Each used to build its own (~5 s of CPU each: the run over HTTP, analysed and alerted). Here
the probes' rounds are submitted one by one over HTTP (OONI protocol, the probe's own
client, as a live deployment receives them) in two phases: the rounds before 11:00, then,
once Twitter's start alert has come and those rounds are analysed (the status "during" the
block is read then), the rest. A webhook receiver on loopback records the signed alerts.
The analysis runs as a thread of the server (the analysis process is covered by
tests/observatory/test_analysis_process.py and the byte-identical live-vs-batch parity).

`LiveRun` does all of that when made and keeps the server up for the API reads of
test_report_live.py, which closes it when its module ends (`close()` is idempotent; the
session fixture in tests/report/conftest.py, a `LiveRuns`, closes it otherwise, and makes
it again if a module needs the server after that).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from netvigil.probe.client import submit_measurements
from netvigil.report.alerts import Subscriptions
from netvigil.report.webhook_sign import DeliveryRejected, DeliveryVerifier
from netvigil.observatory.serve import ObservatoryThread
from tests.recorded_run import run_measurements

SECRET = "webhook-secret"
RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022"
SPLIT = "2022-02-26 11:00:00"


class Receiver:
    """A webhook receiver on loopback that records (event, body, signature ok)."""

    def __init__(self):
        self.alerts: list[tuple[str, dict, bool]] = []
        self.verifier = DeliveryVerifier(SECRET)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    ok = bool(outer.verifier.verify(self.headers, body))
                except DeliveryRejected:
                    ok = False
                outer.alerts.append((self.headers["x-netvigil-event"], json.loads(body), ok))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, event: str, kind: str = "censorship", service: str | None = None, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev, body, _ in list(self.alerts):
                if ev == event and body["incident"]["kind"] == kind and service in (None, body["incident"]["service"]):
                    return body
            time.sleep(0.1)
        raise AssertionError(f"no {event!r} alert; got {[a[0] for a in self.alerts]}")


def wait_for(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not reached")


class LiveRun:
    """The run submitted live (see the module docstring); `observed` is what
    test_report_lab_russia.py reads, `live` what test_report_live.py reads."""

    def __init__(self, data_dir: Path):
        self._stack = contextlib.ExitStack()
        self.closed = False
        try:
            self._run(Path(data_dir))
        except BaseException:
            self.close()
            raise

    def _run(self, data_dir: Path) -> None:
        ms = run_measurements(RUN)  # sorted by start time, decoded once per test process
        receiver = self.receiver = Receiver()
        self._stack.callback(receiver.server.shutdown)
        Subscriptions(data_dir / "subscriptions.json", allow_private=True).add(receiver.url, secret=SECRET, country="RU")
        obs = self._stack.enter_context(ObservatoryThread(
            data_dir, analysis_interval=0.2, probe_tokens={"lab"}, allow_private_webhooks=True, analysis_process=False))
        # one client for every request: httpx.get() builds an SSL context (~40 ms) each call
        http = self._stack.enter_context(httpx.Client())
        pump = obs.app.state.nv.pump
        rounds = [list(g) for _, g in itertools.groupby(ms, key=lambda m: m.measurement_start_time)]
        phase1 = [r for r in rounds if r[0].measurement_start_time < SPLIT]
        phase2 = [r for r in rounds if r[0].measurement_start_time >= SPLIT]
        for round_ms in phase1:
            self._submit(obs.url, round_ms)
        started = receiver.wait("start", service="twitter")
        wait_for(lambda: pump.analysed >= sum(map(len, phase1)) and not pump._stale)
        during = http.get(f"{obs.url}/api/v1/status", params={"country": "RU"}).json()
        for round_ms in phase2:
            self._submit(obs.url, round_ms)
        outage_started = receiver.wait("start", "outage")
        ended = receiver.wait("end", "outage")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            health = http.get(f"{obs.url}/api/v1/health").json()
            if health["analysed"] >= len(ms) and not pump._stale:
                break
            time.sleep(0.2)
        # the last alerts go out after the last round: wait for those the tests expect
        # (not a fixed sleep); a missing one is named by test_alerts_for_start_and_end_arrive_signed
        for event, kind, service in (("start", "censorship", "twitter"), ("start", "censorship", "facebook"),
                                     ("start", "outage", None), ("end", "outage", None)):
            try:
                receiver.wait(event, kind, service, timeout=60)
            except AssertionError:
                break
        self.observed = {
            "incidents": http.get(f"{obs.url}/api/v1/incidents", params={"country": "RU"}).json()["results"],
            "page": http.get(f"{obs.url}/country/RU").text,
            "status": http.get(f"{obs.url}/api/v1/status", params={"country": "RU"}).json()["results"],
            "alerts": list(receiver.alerts), "count": len(ms), "health": health,
        }
        self.live = {"url": obs.url, "receiver": receiver, "started": started, "during": during, "ended": ended,
                     "outage_started": outage_started, "count": len(ms), "app": obs.app, "http": http}

    @staticmethod
    def _submit(url: str, round_ms: list) -> None:
        res = submit_measurements(url, round_ms, token="lab")
        assert res.rejected == 0 and res.queued == 0 and res.submitted == len(round_ms), res.errors

    def close(self) -> None:
        """Stop the server and the receiver (again: nothing); what was read stays."""
        self.closed = True
        self._stack.close()


class LiveRuns:
    """The session's LiveRun: made on first use, and again when a module needs the server
    after it was closed (under xdist a worker may run test_report_live.py's tests apart)."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.run: LiveRun | None = None

    def current(self, *, serving: bool) -> LiveRun:
        if self.run is None or (serving and self.run.closed):
            self.run = LiveRun(self.tmp_path_factory.mktemp("russia-live"))
        return self.run

    def close(self) -> None:
        if self.run is not None:
            self.run.close()
