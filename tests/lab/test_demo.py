"""`netvigil demo`: the replay path (no root needed) runs the bundled recorded lab run through
the observatory and prints what it found; without the lab's prerequisites it says so in one
line and replays."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from netvigil.lab.demo import RECORDED

pytestmark = [pytest.mark.slow]


def test_recorded_run_is_a_real_lab_run():
    run = json.loads((RECORDED / "run.json").read_text())
    assert run["scenario"] == "russia-2022" and run["rounds"] >= 8
    labels = [json.loads(x) for x in (RECORDED / "labels.jsonl").read_text().splitlines()]
    assert {x["technique"] for x in labels} >= {"throttled.targeted", "tls.reset_after_hello", "outage"}


def test_demo_without_prerequisites_replays(tmp_path, monkeypatch):
    """In-process (tests/clirun.py): the lab's prerequisites missing, `demo` says so in its
    first line and replays; test_demo_live_in_the_lab runs the real command."""
    import netvigil.lab.runner as runner
    from tests.clirun import run_cli

    monkeypatch.setattr(runner, "prerequisites", lambda: ["root"])
    p = run_cli("demo", "--no-serve", "--out", tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    first = p.stderr.strip().splitlines()[0]
    assert first.startswith("netvigil demo: the lab needs root; replaying")
    text = " ".join(p.stderr.split())  # rich wraps long lines at the terminal width
    assert "What the observatory found" in text
    assert "twitter" in p.stderr and "facebook" in p.stderr
    assert "Live metrics show that Twitter" in text
    assert "Circumvention is currently possible using VPN services" in text
    assert "http://127.0.0.1:" in text
    assert (tmp_path / "run" / "measurements.jsonl").stat().st_size > 0


@pytest.mark.lab
def test_demo_live_in_the_lab(lab_ready, tmp_path):
    """The README's main job as a new user runs it (as root), shortened to the first 8 rounds
    (06:00-09:30 scenario time): Twitter's throttling from 09:00 is found on the lab's ISPs,
    from what the lab's agents submitted to the lab's observatory (lab/fleet.py)."""
    p = subprocess.run([sys.executable, "-m", "netvigil", "demo", "--no-serve", "--rounds", "8",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    text = " ".join(p.stderr.split())
    assert "lab run: 8 rounds" in text
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert f"from {len(run['vantages'])} agents (enrolled" in text and run["fleet"]["agents"] == len(run["vantages"])
    assert run["fleet"]["acknowledged"] == run["fleet"]["measured"] > 0 and run["fleet"]["left_queued"] == 0
    assert len((tmp_path / "run" / "measurements.jsonl").read_text().splitlines()) == run["fleet"]["acknowledged"]
    assert "twitter in RU: censorship from 2022-02-26 09:00:00" in text
    assert "throttled.targeted 09:00" in text
    assert "Live metrics show that Twitter" in text
    labels = (tmp_path / "run" / "labels.jsonl").read_text()
    assert "throttled.targeted" in labels
