"""`netvigil serve`'s fleet options as an operator gives them: invite file, services, cadence,
helpers; wrong ones are one line (all in-process: `serve` stops at an argument check, or
hands what it would serve to a thread for the checks)."""

from __future__ import annotations

import httpx

from netvigil.observatory.serve import ObservatoryThread, free_port
from tests.clirun import run_cli


def test_serve_hands_out_what_the_operator_configured(tmp_path, monkeypatch):
    """`serve` parsed in-process; what it would serve forever is served from a thread for the
    checks (the entry point's own process: tests/report/test_report_cli.py)."""
    invite = tmp_path / "invite"
    invite.write_text("invite-0123456789abcdef\n")
    seen: dict = {}

    def serve_for_the_checks(data_dir, host, port, **settings):
        with ObservatoryThread(data_dir, host, port, **settings) as srv:
            url = srv.url
            seen["anonymous"] = httpx.post(f"{url}/api/v1/probes/enrol").status_code
            e = httpx.post(f"{url}/api/v1/probes/enrol", headers={"Authorization": "Bearer invite-0123456789abcdef"})
            seen["enrol"] = e.status_code, e.json()
            seen["check_in"] = httpx.post(f"{url}/api/v1/check-in",
                                          headers={"Authorization": e.json()["authorization"]}).json()

    monkeypatch.setattr("netvigil.observatory.serve.run_observatory", serve_for_the_checks)
    r = run_cli("serve", "--port", free_port(), "--data-dir", tmp_path / "obs", "--no-analysis",
                "--invite-file", invite, "--agent-service", "telegram", "--agent-service", "signal",
                "--agent-cadence", "900", "--agent-helper", "127.0.0.1:4443")
    assert r.returncode == 0, r.stderr
    assert seen["anonymous"] == 401
    status, enrolled = seen["enrol"]
    assert status == 200
    a = seen["check_in"]
    assert a["services"] == ["telegram", "signal"] and a["cadence_seconds"] == 900
    assert a["helpers"] == ["127.0.0.1:4443"] and a["probe_id"] == enrolled["probe_id"]


def test_bad_fleet_options_are_one_line(tmp_path, never_serve):
    for args, needle in ((["--agent-service", "myspace"], "unknown service 'myspace'"),
                         (["--agent-cadence", "0"], "--agent-cadence must be positive"),
                         (["--agent-helper", "nohost"], "bad --helper"),
                         (["--invite-file", str(tmp_path / "none")], "invite token")):
        r = run_cli("serve", "--port", free_port(), "--data-dir", tmp_path / "d", *args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and needle in r.stderr, r.stderr
