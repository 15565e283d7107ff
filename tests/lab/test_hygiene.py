"""The lab cleans up after itself: on a failed set-up, on Ctrl-C/SIGTERM, and after a crash
(`netvigil lab clean`); `lab run` writes the run directory of docs/design.md section 15."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netvigil.errors import LabError
from netvigil.lab import cleanup
from netvigil.lab.scenario import load_scenario

pytestmark = [pytest.mark.lab]


def _wait_for_namespaces(prefix_check, timeout=60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = prefix_check()
        if found:
            return found
        time.sleep(0.1)
    return []


def _default_sigint() -> None:
    # a shell's background job inherits SIGINT ignored; the CLI must see Ctrl-C as a user would
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "netvigil", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint, **kw)


def test_failed_setup_leaves_nothing(lab_ready, tmp_path, monkeypatch):
    from netvigil.lab import censor
    from netvigil.lab.runner import Lab

    def broken(*_a, **_k):
        raise LabError("tc exploded (test)")

    monkeypatch.setattr(censor, "setup_tc", broken)
    lab = Lab(load_scenario("tls-reset"), tmp_path / "work")
    with pytest.raises(LabError, match="tc exploded"):
        lab.start()
    assert cleanup.lab_namespaces(lab.rid) == []
    # the daemons it had started are gone too
    assert all(p.poll() is not None for p in lab.procs) and not lab.procs


def _new_namespaces(before: set[str]):
    return lambda: [n for n in cleanup.lab_namespaces() if n not in before]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_tears_down(lab_ready, tmp_path, sig):
    before = set(cleanup.lab_namespaces())
    p = _run(["lab", "run", "kenya-2023", "--out", str(tmp_path / "run"), "--quiet"])
    try:
        ours = _wait_for_namespaces(_new_namespaces(before))
        assert ours, "the lab never came up"
        time.sleep(1.0)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert not [n for n in ours if os.path.exists(f"/run/netns/{n}")]


def test_lab_clean_after_a_crash(lab_ready, tmp_path):
    before = set(cleanup.lab_namespaces())
    p = _run(["lab", "run", "kenya-2023", "--out", str(tmp_path / "run"), "--quiet"])
    ours = _wait_for_namespaces(_new_namespaces(before))
    assert ours
    time.sleep(1.5)  # daemons and the VPN running
    pids = {pid for ns in ours for pid in cleanup.ns_pids(ns)}
    p.kill()  # SIGKILL: no teardown runs
    p.wait(timeout=30)
    assert all(os.path.exists(f"/run/netns/{n}") for n in ours)  # leftovers
    r = subprocess.run([sys.executable, "-m", "netvigil", "lab", "clean"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "removed" in r.stdout
    assert not [n for n in ours if os.path.exists(f"/run/netns/{n}")]
    time.sleep(0.2)
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]


@pytest.mark.slow
def test_lab_run_writes_the_run_directory(lab_ready, tmp_path):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "netvigil", "lab", "run", "tls-reset", "--out", str(out),
                        "--timeout", "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "tls-reset: 2 rounds" in r.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["scenario"] == "tls-reset" and run["rounds"] == 2
    assert [c["scenario_time"] for c in run["clock"]] == ["2022-03-01 08:00:00", "2022-03-01 09:00:00"]
    ms = [json.loads(x) for x in (out / "measurements.jsonl").read_text().splitlines()]
    assert {m["measurement_start_time"] for m in ms} == {"2022-03-01 08:00:00", "2022-03-01 09:00:00"}
    assert {m["annotations"]["path"] for m in ms} == {"direct", "vpn"}
    assert {m["probe_asn"] for m in ms} == {"AS65001", "AS64500"}
    assert all(m["probe_ip"] == "127.0.0.1" for m in ms)
    labels = [json.loads(x) for x in (out / "labels.jsonl").read_text().splitlines()]
    assert labels and all(x["technique"] == "tls.reset_after_hello" for x in labels)


def test_lab_clean_leaves_a_live_run_alone(lab_ready, tmp_path):
    from netvigil.lab.runner import Lab

    with Lab(load_scenario("dns-bogon"), tmp_path / "work") as lab:
        r = subprocess.run([sys.executable, "-m", "netvigil", "lab", "clean"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0
        assert sorted(cleanup.lab_namespaces(lab.rid)) == sorted(lab.plan.namespaces)
    assert cleanup.lab_namespaces(lab.rid) == []
