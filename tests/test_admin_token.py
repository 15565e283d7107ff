"""Secrets never on a command line; links never built from the Host header.

`ps` (/proc/PID/cmdline) shows every process's arguments to every local user, so the admin
token, probe tokens and webhook secrets come from files or the environment. A client
chooses the Host header it sends, so next_url and alert links come from --public-url (or the
address served), never from it. Servers run on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from netvigil.observatory.app import create_app
from netvigil.probe.client import submit_measurements
from netvigil.report.replay import load_run
from netvigil.observatory.serve import free_port
from tests.clirun import CliResult, run_cli

RUN = Path(__file__).resolve().parent / "data" / "lab" / "russia-2022"
TOKEN = "admin-3f9c2b7e1d4a6058"
PROBE = "probe-token-7c1e"


def netvigil(*args: str) -> CliResult:
    """`netvigil ARGS` in this process (tests/clirun.py): these all stop at an argument check."""
    return run_cli(*args)


@pytest.fixture(autouse=True)
def never_serve_in_process(monkeypatch):
    """An in-process `serve` that got past its checks fails here instead of serving forever."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("serve got past its argument checks")

    monkeypatch.setattr("netvigil.observatory.serve.run_observatory", refuse)


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("NETVIGIL_")}


@pytest.mark.parametrize("args, good", [
    (["serve", "--admin-token", TOKEN], ("--admin-token-file", "NETVIGIL_ADMIN_TOKEN")),
    (["serve", "--probe-token", PROBE], ("--probe-tokens-file", "NETVIGIL_PROBE_TOKENS")),
    (["subscribe", "https://hooks.example.org/x", "--secret", "s3cret"], ("--secret-file", "NETVIGIL_WEBHOOK_SECRET")),
])
def test_a_secret_on_the_command_line_is_refused_with_the_two_ways(args, good, tmp_path):
    r = netvigil(*args, "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "visible to every user in `ps`" in r.stderr and all(g in r.stderr for g in good), r.stderr
    assert not (tmp_path / "subscriptions.json").exists()


def test_bad_token_files_are_one_line_errors(tmp_path):
    short, empty = tmp_path / "short", tmp_path / "empty"
    short.write_text("abc\n")
    empty.write_text("\n")
    short.chmod(0o600)
    empty.chmod(0o600)
    for path, needle in ((short, "at least 16"), (empty, "is empty"), (tmp_path / "missing", "no such file"),
                         (tmp_path, "not a regular file")):
        r = netvigil("serve", "--admin-token-file", str(path), "--port", str(free_port()), "--data-dir", str(tmp_path))
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def start(args: list[str], port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "netvigil", "serve", "--port", str(port), "--no-analysis", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=1) as c:  # one client for every poll: httpx.get() builds an SSL context each call
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode())
            try:
                if c.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200:
                    return proc
            except httpx.HTTPError:
                time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def test_tokens_from_files_work_and_never_show_in_ps(tmp_path):
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    (tmp_path / "probes").write_text(f"# trusted probes\n{PROBE}\n")
    os.chmod(tmp_path / "admin.token", 0o600)
    os.chmod(tmp_path / "probes", 0o600)
    port = free_port()
    proc = start(["--data-dir", str(tmp_path / "obs"), "--admin-token-file", str(tmp_path / "admin.token"),
                  "--probe-tokens-file", str(tmp_path / "probes"), "--require-probe-token"], port, clean_env())
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"admin.token" in cmdline and TOKEN.encode() not in cmdline and PROBE.encode() not in cmdline
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/api/v1/admin/stats", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert httpx.get(f"{url}/api/v1/admin/stats", headers={"Authorization": "Bearer wrong"}).status_code == 403
        ms = load_run(RUN)[:3]
        assert submit_measurements(url, ms, token=PROBE).submitted == 3
        # the default public URL is the address served: a forged Host header is not reflected
        page = httpx.get(f"{url}/api/v1/measurements", params={"limit": 1}, headers={"Host": "evil.example"}).json()
        assert page["metadata"]["next_url"].startswith(f"http://127.0.0.1:{port}/api/v1/measurements?")
    finally:
        stop(proc)


def test_the_admin_token_from_the_environment(tmp_path, monkeypatch):
    """`serve` in-process with the token in its environment; what it would serve forever is
    served from a thread for the check (a process and its cmdline: the test above)."""
    from netvigil.observatory.serve import ObservatoryThread

    seen: dict = {}

    def serve_for_the_check(data_dir, host, port, **settings):
        with ObservatoryThread(data_dir, host, port, **settings) as srv:
            r = httpx.get(f"{srv.url}/api/v1/admin/subscriptions", headers={"Authorization": f"Bearer {TOKEN}"})
            seen["with"] = r.status_code, r.json()
            seen["without"] = httpx.get(f"{srv.url}/api/v1/admin/subscriptions").status_code

    monkeypatch.setattr("netvigil.observatory.serve.run_observatory", serve_for_the_check)
    r = run_cli("serve", "--port", free_port(), "--no-analysis", "--data-dir", tmp_path,
                env={"NETVIGIL_ADMIN_TOKEN": TOKEN})
    assert r.returncode == 0, r.stderr
    assert seen["with"] == (200, []) and seen["without"] in (401, 403)


@pytest.mark.parametrize("public_url, prefix", [
    ("https://obs.example.org/netvigil", "https://obs.example.org/netvigil/api/v1/measurements?"),
    (None, "/api/v1/measurements?"),  # not configured: a relative link
])
def test_next_url_never_reflects_the_host_header(tmp_path, public_url, prefix):
    app = create_app(tmp_path, analysis=False, probe_tokens={PROBE}, public_url=public_url)
    with TestClient(app) as c:
        from netvigil.collector import intake

        body = b"".join(intake.encode(m) + b"\n" for m in load_run(RUN)[:3])
        assert c.post("/api/v1/submit", content=body, headers={"Authorization": f"Bearer {PROBE}"}).status_code == 200
        for host in ("evil.example", "evil.example:8470", "127.0.0.1"):
            r = c.get("/api/v1/measurements", params={"limit": 1, "offset": 0}, headers={"Host": host})
            next_url = r.json()["metadata"]["next_url"]
            assert next_url.startswith(prefix) and "evil" not in next_url and "offset=1" in next_url, next_url
            csv = c.get("/api/v1/measurements", params={"limit": 1, "format": "csv"}, headers={"Host": host})
            assert csv.headers["link"].startswith(f"<{prefix}") and "evil" not in csv.headers["link"]


def test_public_url_is_checked():
    r = netvigil("serve", "--public-url", "javascript:alert(1)", "--port", str(free_port()))
    assert r.returncode == 2 and "--public-url" in r.stderr and "Traceback" not in r.stderr
