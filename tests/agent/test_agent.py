"""`netvigil agent` against a real observatory and real servers on loopback: enrolment kept
private, a round measured and submitted with provenance, the observatory down, a kill -9
mid-round, the byte budget and re-location from check-in answers.

One-round runs call the command in-process (tests/clirun.py); the kill -9 and SIGTERM tests
start the real command, whose point is a process (they also prove the entry point's status)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from netvigil.agent.budget import ByteBudget, throughput_bound
from netvigil.agent.loop import Agent, AgentConfig
from netvigil.collector.fleet import FleetSettings
from netvigil.model.checkin import CheckInAnswer
from netvigil.collector.provenance import ProvenanceLog
from netvigil.probe.settings import ProbeSettings
from netvigil.observatory.serve import ObservatoryThread, free_port
from tests.clirun import CliResult, run_cli

NETVIGIL = [sys.executable, "-m", "netvigil"]


def observatory(data: Path, port: int | None = None) -> ObservatoryThread:
    fleet = FleetSettings(services=("twitter",), cadence_seconds=60)
    return ObservatoryThread(data, port=port, analysis=False, extra={"fleet": fleet})


def agent_cli(world, url: str, data_dir: Path, *extra: str) -> CliResult:
    """One round of `netvigil agent --once` (bounded by its --timeout per step)."""
    return run_cli("agent", "--server", url, "--data-dir", data_dir, "--once", *world.cli_args(),
                   "--timeout", "2", *extra, env={"COLUMNS": "200"})


def stored(srv: ObservatoryThread) -> dict[tuple[str, str], str]:
    """(service, start time) -> uid of what the collector holds."""
    return {(m.service or "", m.measurement_start_time): uid for uid, m in srv.app.state.nv.collector.index.items()}


def test_once_enrols_measures_submits_with_provenance(world, tmp_path):
    data = tmp_path / "agent"
    with observatory(tmp_path / "obs") as srv:
        r = agent_cli(world, srv.url, data)
        assert r.returncode == 0, r.stderr
        assert "enrolled as nvp_" in r.stderr and "round 1: measured 2, submitted 2, queued 0" in r.stderr
        ident = json.loads((data / "identity.json").read_text())
        assert stat.S_IMODE(os.stat(data / "identity.json").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        assert ident["secret"] not in r.stderr + r.stdout
        assert {s for s, _ in stored(srv)} == {"twitter", "control"}
        prov = ProvenanceLog(tmp_path / "obs" / "collector" / "provenance.jsonl").read()
        assert {p.probe_id for p in prov.values()} == {ident["probe_id"]} and len(prov) == 2
        # a second round: the same identity, no new enrolment
        again = agent_cli(world, srv.url, data)
        assert again.returncode == 0 and "enrolled" not in again.stderr
        assert len(srv.app.state.nv.collector.index) == 4
        assert list((data / "queue").glob("*.jsonl")) == []


def test_observatory_down_loses_nothing(world, tmp_path):
    data = tmp_path / "agent"
    port = free_port()
    with observatory(tmp_path / "obs", port) as srv:
        url = srv.url
        assert agent_cli(world, url, data).returncode == 0
    # down: the round is measured from the last check-in and queued on disk
    down = agent_cli(world, url, data)
    assert down.returncode == 0, down.stderr
    assert "measured 2, submitted 0, queued 2" in down.stderr and "observatory unreachable" in down.stderr
    queued = [line for f in (data / "queue").glob("*.jsonl") for line in f.read_text().splitlines() if line]
    assert len(queued) == 2
    with observatory(tmp_path / "obs", port) as srv:
        up = agent_cli(world, url, data)
        assert up.returncode == 0 and "submitted 4, queued 0" in up.stderr
        assert len(srv.app.state.nv.collector.index) == 6
        starts = {json.loads(line)["measurement_start_time"] for line in queued}
        assert starts <= {t for _, t in stored(srv)}
    assert list((data / "queue").glob("*.jsonl")) == []


def test_never_enrolled_and_observatory_down_is_one_line(world, tmp_path):
    r = agent_cli(world, f"http://127.0.0.1:{free_port()}", tmp_path / "agent")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("netvigil: error:") and "cannot enrol" in r.stderr


def test_kill_9_mid_round_loses_nothing_measured(tmp_path):
    """Slow servers (0.4 s before each DNS answer, handshake and response): the agent is killed
    once the first measurement of the round is on disk; the next run sends it. The killed agent
    is a process (kill -9 is the point); the next run is in-process through main()."""
    from servers import LoopbackWorld

    data = tmp_path / "agent"
    with LoopbackWorld(delay=0.4) as slow, observatory(tmp_path / "obs") as srv:
        args = [*NETVIGIL, "agent", "--server", srv.url, "--data-dir", str(data), "--once", *slow.cli_args(),
                "--timeout", "5", "--quiet"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines: list[str] = []
        try:
            for _ in range(600):  # at most 60 s
                files = list((data / "queue").glob("*.jsonl")) if (data / "queue").exists() else []
                lines = [x for f in files for x in f.read_text().split("\n")[:-1]]
                if lines or proc.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert len(lines) == 1, "the round ended before it could be killed half-way"
        assert len(srv.app.state.nv.collector.index) == 0  # killed before it submitted anything
        killed = json.loads(lines[0])
        r = run_cli(*args[len(NETVIGIL):])
        assert r.returncode == 0, r.stderr
        held = stored(srv)
        assert (killed["annotations"]["service"], killed["measurement_start_time"]) in held
        assert len(held) == 3  # the killed round's one + this round's two


def test_byte_budget_per_day(tmp_path):
    now = [1_700_000_000.0]
    b = ByteBudget(tmp_path / "budget.json", daily_bytes=1000, clock=lambda: now[0])
    assert b.take(600) and not b.take(600) and b.left() == 400
    assert ByteBudget(tmp_path / "budget.json", 1000, clock=lambda: now[0]).left() == 400  # kept across restarts
    now[0] += 86400
    assert b.left() == 1000 and b.take(600)
    (tmp_path / "budget.json").write_text("{broken")
    assert b.left() == 1000
    assert throughput_bound(2, 3, 20_000) == 600_000


def answer(**kw) -> CheckInAnswer:
    base = dict(v=1, probe_id="nvp_x", catalogue_version="x", services=["twitter"], cadence_seconds=60.0,
                jitter=0.1, helpers=["127.0.0.1:9"], probe_asn="AS3320", probe_cc="DE",
                probe_network_name="Telekom", located=True, utc_time="")
    base.update(kw)
    return CheckInAnswer(**base)


def test_location_and_helpers_follow_the_check_in(tmp_path):
    a = Agent(AgentConfig(server="http://127.0.0.1:9", data_dir=str(tmp_path / "a")))
    try:
        s = a.settings_for(answer(), throughput=True)
        assert (s.probe_asn, s.probe_cc, s.helpers) == ("AS3320", "DE", ("127.0.0.1:9",))
        moved = a.settings_for(answer(probe_asn="AS12389", probe_cc="RU", probe_network_name="Rostelecom"), True)
        assert (moved.probe_asn, moved.probe_cc, moved.probe_network_name) == ("AS12389", "RU", "Rostelecom")
        assert a.settings_for(answer(), throughput=False).helpers == ()  # over budget: no helper traffic
        unknown = a.settings_for(answer(probe_asn="AS0", probe_cc="ZZ", located=False), True)
        assert (unknown.probe_asn, unknown.probe_cc) == ("AS0", "ZZ")  # left to the helper's echo
        assert unknown.location_file == str(tmp_path / "a" / "location.json")
        assert a.services_of(answer(services=["twitter", "myspace"])) == ["twitter", "control"]
    finally:
        a.close()
    pinned = Agent(AgentConfig(server="http://127.0.0.1:9", data_dir=str(tmp_path / "b"),
                               probe=ProbeSettings(probe_asn="AS1", probe_cc="KZ")))
    try:
        assert pinned.settings_for(answer(), True).probe_asn == "AS1"
    finally:
        pinned.close()


def test_bad_arguments_are_one_line(tmp_path):
    for args, needle in ((["--server", "ftp://x"], "http://"), (["--server", "http://x", "--probe-cc", "Russia"], "probe-cc"),
                         (["--server", "http://x", "--invite-file", str(tmp_path / "none")], "invite")):
        r = run_cli("agent", *args, "--data-dir", tmp_path / "d", "--once")
        assert r.returncode == 2 and "Traceback" not in r.stderr and needle in r.stderr, r.stderr


def test_forgotten_probe_enrols_again_and_sigterm_ends_the_loop(world, tmp_path):
    """The observatory's registry is lost: the agent's next check-in is refused (401), it enrols
    again and its round is accepted. Run as a service (no --once), SIGTERM ends it cleanly."""
    data = tmp_path / "agent"
    with observatory(tmp_path / "obs") as srv:
        assert agent_cli(world, srv.url, data).returncode == 0
        old = json.loads((data / "identity.json").read_text())["probe_id"]
        registry = srv.app.state.fleet.registry
        registry.probes.clear()  # as if the observatory's probes.jsonl were lost
        proc = subprocess.Popen([*NETVIGIL, "agent", "--server", srv.url, "--data-dir", str(data), *world.cli_args(),
                                 "--timeout", "2", "--cadence", "3600"], stderr=subprocess.PIPE, text=True)
        seen = []
        watchdog = threading.Timer(120, proc.kill)  # bounded: a hung agent is killed, and the test fails
        watchdog.start()
        try:
            for line in proc.stderr:
                seen.append(line)
                if "round 1:" in line:
                    proc.send_signal(signal.SIGTERM)
                    break
            rc = proc.wait(30)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
        text = "".join(seen)
        assert rc == 0, text
        assert "does not know probe" in text and "enrolled as" in text and "submitted 2" in text, text
        new = json.loads((data / "identity.json").read_text())["probe_id"]
        assert new != old and (data / "identity.json.old").exists() and new in registry.probes
