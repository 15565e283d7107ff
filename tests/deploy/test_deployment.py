"""The production set-up of docs/deployment.md, checked where a test can reach it:
the systemd units are valid for systemd and start a command line that netvigil accepts,
with the hardening and the secret handling the docs promise; a backup of the measurement
log alone restores an observatory with the same verdicts.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import zstandard

from tests.conftest import REPO, missing_or_fail

UNITS = sorted((REPO / "deploy" / "systemd").glob("*.service"))
NETVIGIL = Path(sys.executable).parent / "netvigil"
LAB_RUN = REPO / "tests" / "data" / "lab" / "russia-2022" / "measurements.jsonl.zst"
SECRET_OPTIONS = ("--admin-token", "--probe-token", "--secret")


def directives(unit: Path) -> dict[str, list[str]]:
    """'Section.Key' -> values in order (systemd allows a key more than once)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


def one(d: dict[str, list[str]], key: str) -> str:
    assert key in d, f"{key} missing"
    return d[key][-1]


# What each unit must start: the command, and the options netvigil must parse to these values.
EXPECTED = {
    "netvigil-serve.service": ("serve", {"host": "127.0.0.1", "port": 8470}),
    "netvigil-helper.service": ("helper", {"listen": "0.0.0.0:443"}),
    "netvigil-agent.service": ("agent", {"server": "https://obs.example.org"}),
}


def test_units_are_shipped():
    assert sorted(u.name for u in UNITS) == sorted(EXPECTED)


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_runs_unprivileged_with_hardening(unit):
    d = directives(unit)
    assert one(d, "Service.User") not in ("", "root", "0")
    for key, want in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                      "PrivateTmp": "yes", "PrivateDevices": "yes"}.items():
        assert one(d, f"Service.{key}") == want, key
    # no capability, or only binding a port under 1024
    assert one(d, "Service.CapabilityBoundingSet") in ("", "CAP_NET_BIND_SERVICE")
    assert d.get("Service.AmbientCapabilities", [""])[-1] == one(d, "Service.CapabilityBoundingSet")


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_no_secret_on_the_command_line(unit):
    d = directives(unit)
    argv = shlex.split(one(d, "Service.ExecStart"))
    assert not [a for a in argv if a.split("=")[0] in SECRET_OPTIONS], argv
    assert not any("TOKEN" in v or "SECRET" in v for v in d.get("Service.Environment", []))


def test_serve_keeps_its_state_and_reads_the_admin_token_from_credentials():
    d = directives(REPO / "deploy" / "systemd" / "netvigil-serve.service")
    assert one(d, "Service.StateDirectory") == "netvigil"
    creds = {v.split(":", 1)[0]: v.split(":", 1)[1] for v in d.get("Service.LoadCredential", [])}
    assert creds == {"admin-token": "/etc/netvigil/admin-token"}
    argv = shlex.split(one(d, "Service.ExecStart"))
    assert argv[argv.index("--admin-token-file") + 1] == "%d/admin-token"
    assert argv[argv.index("--data-dir") + 1] == "%S/netvigil"


def expand(arg: str, state: Path, creds: Path) -> str:
    """The systemd specifiers the units use: %S state root, %d credentials directory."""
    return arg.replace("%S", str(state)).replace("%d", str(creds))


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_exec_start_is_a_command_netvigil_accepts(unit, tmp_path):
    """Parse ExecStart with netvigil's own command line (parsing only, nothing is run)."""
    from typer.main import get_command

    from netvigil.cli import _register, app

    argv = shlex.split(one(directives(unit), "Service.ExecStart"))
    assert argv[0] == "/opt/netvigil/bin/netvigil"
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "admin-token").write_text("t" * 32 + "\n")
    args = [expand(a, tmp_path, tmp_path / "creds") for a in argv[1:]]
    command, want = EXPECTED[unit.name]
    assert args[0] == command
    _register()
    root = get_command(app)
    with root.make_context("netvigil", list(args)) as ctx:
        sub = root.get_command(ctx, command)
        assert sub is not None, f"no command {command!r}"
        with sub.make_context(command, args[1:], parent=ctx) as sub_ctx:
            params = sub_ctx.params
    assert {k: params[k] for k in want} == want


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        missing_or_fail("systemd-analyze (apt-get install systemd)")
    return path


def runnable_copy(unit: Path, tmp_path: Path) -> Path:
    """The unit with ExecStart on this checkout's netvigil (verify wants an executable)."""
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/opt/netvigil/bin/netvigil", str(NETVIGIL)))
    return copy


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_accepts_the_unit(unit, tmp_path):
    """systemd-analyze only warns on an unknown or misspelt key: any message is a failure."""
    r = subprocess.run([systemd_analyze(), "verify", str(runnable_copy(unit, tmp_path))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r.stderr + r.stdout


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_rates_the_unit_safe_or_ok(unit, tmp_path):
    """systemd's own exposure scale (0 safe .. 10 unsafe): OK or better."""
    r = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--no-pager",
                        str(runnable_copy(unit, tmp_path))], capture_output=True, text=True, timeout=60)
    overall = [line for line in (r.stdout + r.stderr).splitlines() if "Overall exposure level" in line]
    assert overall, r.stdout + r.stderr
    assert any(word in overall[0] for word in (" OK", " SAFE")), overall[0]


# --- backup and restore: the measurement log is the one thing to keep -----------------

def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


class Served:
    """The observatory on DATA_DIR as `netvigil serve` runs it, here from a thread of the test
    process with its analysis as a thread: what a backup keeps is the point, not the processes
    (a served process: scripts/wheel_smoke.sh, tests/observatory/test_analysis_process.py).
    Stopped as SIGTERM stops serve: uvicorn's graceful exit, then the app's shutdown."""

    def __init__(self, data_dir: Path):
        from netvigil.observatory.serve import ObservatoryThread

        self.server = ObservatoryThread(data_dir, analysis_process=False).start()
        self.base = self.server.url

    def wait_analysed(self, n: int, seconds: float = 120) -> dict:
        deadline = time.monotonic() + seconds  # a bound for a broken analysis, not a speed limit
        health: dict = {}
        while time.monotonic() < deadline:
            assert self.server.thread.is_alive(), "the observatory stopped"
            try:
                health = get(self.base + "/api/v1/health")
                if health["analysed"] >= n:
                    return health
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"analysis did not reach {n} measurements: {health}")

    def verdicts(self) -> list[tuple]:
        rows = get(self.base + "/api/v1/verdicts?limit=10000")["results"]
        return sorted((r["measurement_uid"], r["service"], r["class"], r["technique"]) for r in rows)

    def stop(self) -> None:
        self.server.server.should_exit = True  # what serve's SIGTERM handler sets
        self.server.thread.join(timeout=120)  # a bound for a stuck shutdown, not a speed limit
        assert not self.server.thread.is_alive(), "the observatory did not stop"


@pytest.mark.slow
def test_a_backup_of_the_log_restores_the_same_verdicts(tmp_path):
    with zstandard.ZstdDecompressor().stream_reader(LAB_RUN.open("rb")) as fh:
        lines = fh.read().splitlines()[:80]
    live = Served(tmp_path / "live")
    try:
        live.wait_analysed(0)
        req = urllib.request.Request(live.base + "/api/v1/submit", data=b"\n".join(lines) + b"\n", method="POST",
                                     headers={"Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert len(json.load(r)["measurement_uids"]) == len(lines)
        live.wait_analysed(len(lines))
        before = live.verdicts()
    finally:
        live.stop()
    assert before, "the live observatory judged nothing: the comparison would be empty"

    # docs/deployment.md: back up DATA_DIR/log (and subscriptions.json); tables are derived
    shutil.copytree(tmp_path / "live" / "log", tmp_path / "restored" / "log")
    restored = Served(tmp_path / "restored")
    try:
        health = restored.wait_analysed(len(lines))
        assert health["measurements"] == len(lines)
        assert restored.verdicts() == before
    finally:
        restored.stop()
