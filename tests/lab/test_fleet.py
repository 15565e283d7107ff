"""The lab runs the fleet (issue #13): `netvigil lab run` puts `netvigil agent` in every vantage
against `netvigil serve` on the lab's transit. The agents enrol with the operator's trusted invite,
check in (the helper comes from the check-in), locate themselves with the lab's own table,
measure and submit; an outage makes them queue and they send it all later; measurements.jsonl
is what the observatory acknowledged; nothing keeps running once the run is over. And in the
lab: an agent kill -9'd mid-round and an observatory down for a while lose nothing."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from netvigil.lab import cleanup
from netvigil.lab.scenario import load_scenario

pytestmark = [pytest.mark.lab]


def _processes_mentioning(text: str) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            out.append(f"{proc.name}: {cmd[:200]}")
    return out


def _key(m: dict) -> tuple:
    """One measurement of one vantage: its scenario time, service and path."""
    ann = m.get("annotations") or {}
    return m["measurement_start_time"], ann.get("service") or m.get("input"), ann.get("path", "direct")


def _lines(paths) -> list[dict]:
    """Complete JSON lines of files (a torn last line, cut by kill -9, was never complete)."""
    out = []
    for p in paths:
        data = Path(p).read_bytes()
        for line in data[:data.rfind(b"\n") + 1].splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


@pytest.fixture(scope="module")
def outage_run(lab_ready):
    """`netvigil lab run outage` (08:00 up, 09:00 the ISP's uplink down until the end)."""
    out = Path(tempfile.mkdtemp(prefix="netvigil-lab-fleet-")) / "run"
    before = set(cleanup.lab_namespaces())
    r = subprocess.run([sys.executable, "-m", "netvigil", "lab", "run", "outage", "--out", str(out), "--timeout", "3",
                        "--quiet"], capture_output=True, text=True, timeout=900)
    time.sleep(0.2)
    return {"result": r, "out": out, "new_namespaces": [n for n in cleanup.lab_namespaces() if n not in before],
            "left_running": _processes_mentioning(str(out))}


def test_agents_enrol_check_in_and_submit(outage_run):
    r, out = outage_run["result"], outage_run["out"]
    assert r.returncode == 0, r.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    fleet_dir = out / ".lab" / "fleet"
    vantages = run["vantages"]
    assert {v["kind"] for v in vantages} == {"isp", "control"}
    # one enrolment per vantage, by invitation, kept private in the agent's data dir
    registry = [json.loads(x) for x in (fleet_dir / "observatory" / "collector" / "probes.jsonl").read_text().splitlines()]
    idents = [json.loads(p.read_text()) for p in fleet_dir.glob("agent-*/identity.json")]
    assert len(idents) == len(vantages) == run["fleet"]["agents"] == len({p["probe_id"] for p in registry})
    assert {i["probe_id"] for i in idents} == {p["probe_id"] for p in registry}
    assert all(p["trusted"] for p in registry)  # the operator's own probes: the trusted invite
    for p in fleet_dir.glob("agent-*/identity.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    # the check-in handed out the lab's helper (the agents were given none on their command line)
    for p in fleet_dir.glob("agent-*/checkin.json"):
        assert json.loads(p.read_text())["helpers"] == [run["helper"]]
    # every measurement came from an enrolled agent (provenance), none anonymous
    ms = [json.loads(x) for x in (out / "measurements.jsonl").read_text().splitlines()]
    prov = [json.loads(x) for x in (fleet_dir / "observatory" / "collector" / "provenance.jsonl").read_text().splitlines()]
    assert len(ms) == len(prov) == run["fleet"]["acknowledged"] == run["fleet"]["measured"] > 0
    assert {p["probe_id"] for p in prov} == {i["probe_id"] for i in idents}
    # self-located: the check-in cannot place a private address, the helper's echo and the
    # lab's own IP-to-ASN table did
    s = load_scenario("outage")
    up = [m for m in ms if m["measurement_start_time"].endswith("08:00:00")]
    assert {(m["probe_network_name"], m["probe_asn"], m["probe_cc"]) for m in up} == {
        (s.isps[0].name, s.isps[0].asn, s.isps[0].cc), (s.control.name, s.control.asn, s.control.cc)}
    assert all(json.loads(p.read_text())["located"] is False for p in fleet_dir.glob("agent-*/checkin.json"))
    assert all(m["probe_ip"] == "127.0.0.1" for m in ms)  # the probe's address is never stored


def test_an_outage_queues_and_nothing_is_lost(outage_run):
    out = outage_run["out"]
    run = json.loads((out / "run.json").read_text())
    isp = load_scenario("outage").isps[0].name
    during = next(c for c in run["clock"] if c["scenario_time"].endswith("09:00:00"))
    assert during["in_force"] == {isp: ["outage"]}
    cut_off = during["agents"][isp]
    assert cut_off["measured"] > 0 and cut_off["submitted"] == 0 and cut_off["queued"] == cut_off["measured"]
    # ... sent once the event was over: the observatory holds the outage round of that ISP
    ms = [json.loads(x) for x in (out / "measurements.jsonl").read_text().splitlines()]
    got = [m for m in ms if m["measurement_start_time"].endswith("09:00:00") and m["probe_network_name"] == isp]
    assert len(got) == cut_off["measured"]
    assert run["fleet"]["left_queued"] == 0 and run["fleet"]["acknowledged"] == run["fleet"]["measured"]
    assert list((out / ".lab" / "fleet").glob("agent-*/queue/*.jsonl")) == []


def test_nothing_left_running(outage_run):
    assert outage_run["new_namespaces"] == []
    assert outage_run["left_running"] == []


def test_kill_9_mid_round_and_observatory_down_lose_nothing(lab_ready, tmp_path):
    from netvigil.lab.fleet import LabFleet
    from netvigil.lab.runner import Lab

    scenario = load_scenario("tls-reset")
    with Lab(scenario, tmp_path / "work") as lab:
        fleet = LabFleet(lab, timeout=3.0)
        fleet.start_observatory()
        v = next(x for x in lab.vantages() if x.kind == "isp")
        first = fleet.run_agent(v, "2022-03-01 08:00:00", 300)
        assert first.problem == "" and first.measured == first.submitted > 0
        acknowledged = {_key(json.loads(x)) for x in fleet.collected()}
        assert len(acknowledged) == first.measured

        # kill -9 as soon as the round has put a measurement on disk
        queue = fleet.data_dir(v) / "queue"
        p = subprocess.Popen(fleet.agent_command(v, "2022-03-01 08:30:00"), env=fleet.env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while not _lines(queue.glob("*.jsonl")) and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            p.send_signal(signal.SIGKILL)
        finally:
            p.wait(timeout=60)
        assert p.returncode == -signal.SIGKILL  # killed, not finished
        on_disk = {_key(m) for m in _lines(queue.glob("*.jsonl"))}
        assert on_disk, "the agent was killed before it measured anything"

        # the observatory crashes; the next round is measured and queued
        fleet.stop_observatory(signal.SIGKILL)
        down = fleet.run_agent(v, "2022-03-01 09:00:00", 300)
        assert down.measured > 0 and down.submitted == 0 and down.queued >= down.measured
        queued = {_key(m) for m in _lines(queue.glob("*.jsonl"))}
        assert on_disk <= queued and len(queued) >= len(on_disk) + down.measured

        # back up (same data dir): the next round sends everything held
        fleet.start_observatory()
        up = fleet.run_agent(v, "2022-03-01 09:30:00", 300)
        assert up.problem == "" and up.queued == 0
        assert list(queue.glob("*.jsonl")) == []
        held = {_key(json.loads(x)) for x in fleet.collected()}
        assert acknowledged <= held  # acknowledged before the crash: still there
        assert queued <= held  # measured during the kill and the outage: delivered
        assert len(held) == len(acknowledged) + len(queued) + up.measured
        assert {k[0] for k in held} == {"2022-03-01 08:00:00", "2022-03-01 08:30:00", "2022-03-01 09:00:00",
                                        "2022-03-01 09:30:00"}
        fleet.stop_observatory()
    assert cleanup.lab_namespaces(lab.rid) == []
    assert _processes_mentioning(str(tmp_path / "work")) == []
