"""`netvigil serve`'s fleet options as an operator gives them: invite file, services, cadence,
helpers; wrong ones are one line (in-process: they stop at an argument check)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from netvigil.observatory.serve import free_port
from tests.clirun import run_cli

NETVIGIL = [sys.executable, "-m", "netvigil"]


def test_serve_hands_out_what_the_operator_configured(tmp_path):
    invite = tmp_path / "invite"
    invite.write_text("invite-0123456789abcdef\n")
    port = free_port()
    proc = subprocess.Popen([*NETVIGIL, "serve", "--port", str(port), "--data-dir", str(tmp_path / "obs"),
                             "--no-analysis", "--invite-file", str(invite), "--agent-service", "telegram",
                             "--agent-service", "signal", "--agent-cadence", "900",
                             "--agent-helper", "127.0.0.1:4443"], stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # at most 60 s to start
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.post(f"{url}/api/v1/probes/enrol").status_code == 401
        e = httpx.post(f"{url}/api/v1/probes/enrol", headers={"Authorization": "Bearer invite-0123456789abcdef"})
        assert e.status_code == 200
        a = httpx.post(f"{url}/api/v1/check-in", headers={"Authorization": e.json()["authorization"]}).json()
        assert a["services"] == ["telegram", "signal"] and a["cadence_seconds"] == 900
        assert a["helpers"] == ["127.0.0.1:4443"] and a["probe_id"] == e.json()["probe_id"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_bad_fleet_options_are_one_line(tmp_path, never_serve):
    for args, needle in ((["--agent-service", "myspace"], "unknown service 'myspace'"),
                         (["--agent-cadence", "0"], "--agent-cadence must be positive"),
                         (["--agent-helper", "nohost"], "bad --helper"),
                         (["--invite-file", str(tmp_path / "none")], "invite token")):
        r = run_cli("serve", "--port", free_port(), "--data-dir", tmp_path / "d", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and needle in r.stderr, r.stderr
