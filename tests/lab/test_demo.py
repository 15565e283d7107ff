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


def test_demo_without_prerequisites_replays(tmp_path):
    code = ("import sys; import netvigil.lab.runner as r; r.prerequisites = lambda: ['root']; "
            "from netvigil.cli import main; sys.exit(main(['demo', '--no-serve', '--out', sys.argv[1]]))")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    first = p.stderr.strip().splitlines()[0]
    assert first.startswith("netvigil demo: the lab needs root; replaying")
    assert "What the observatory found" in p.stderr
    assert "twitter" in p.stderr and "facebook" in p.stderr
    assert (tmp_path / "run" / "measurements.jsonl").stat().st_size > 0
