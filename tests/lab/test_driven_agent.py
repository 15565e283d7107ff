"""The lab fleet's wait for a driven agent's answer (DrivenAgent.ask), on a real child process.

Building a real fleet needs the lab's namespaces; the wait does not, so the fleet here is a
stand-in that runs a small Python program speaking the driven agent's line protocol (a
command a line in, a JSON answer a line out). Not marked `lab`: no namespace is built.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

from netvigil.lab.fleet import DrivenAgent

AGENT = r"""
import json, sys, time
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "measure":
        sys.stdout.write(json.dumps({"measured": 3, "submitted": 2, "queued": 1}) + "\n")
    elif cmd == "split":  # an answer in two writes: the reader must wait for the newline
        sys.stdout.write('{"measured": 5,'); sys.stdout.flush(); time.sleep(0.2)
        sys.stdout.write(' "submitted": 5}\n')
    elif cmd == "hang":
        time.sleep(30)
    elif cmd == "die":
        sys.exit(3)
    sys.stdout.flush()
"""


class StandInFleet:
    def __init__(self, directory: Path):
        self.dir = directory
        self.lab = SimpleNamespace(procs=[])

    def agent_command(self, v, at, driven):
        return [sys.executable, "-c", AGENT]

    def env(self):
        return dict(os.environ)


def _agent(tmp_path) -> tuple[DrivenAgent, StandInFleet]:
    fleet = StandInFleet(tmp_path)
    return DrivenAgent(fleet, SimpleNamespace(name="v1", ns="nv-test-v1")), fleet


def _stop(fleet: StandInFleet) -> None:
    for proc in fleet.lab.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_answers_are_read_whole_even_when_written_in_pieces(tmp_path):
    agent, fleet = _agent(tmp_path)
    try:
        run = agent.ask("measure", limit=60)
        assert (run.returncode, run.measured, run.submitted, run.queued, run.problem) == (0, 3, 2, 1, "")
        run = agent.ask("split", limit=60)
        assert (run.returncode, run.measured, run.submitted) == (0, 5, 5)
        assert len(fleet.lab.procs) == 1, "one agent process for both commands"
    finally:
        _stop(fleet)


def test_a_silent_agent_is_given_up_after_the_limit_and_restarted(tmp_path):
    agent, fleet = _agent(tmp_path)
    try:
        run = agent.ask("hang", limit=0.3)
        assert run.returncode == -1 and "no answer to 'hang' in 0.3 s" in run.problem
        assert fleet.lab.procs[0].poll() is not None, "the silent agent is killed"
        run = agent.ask("measure", limit=60)
        assert run.returncode == 0 and run.measured == 3
        assert len(fleet.lab.procs) == 2, "the next command started it again"
    finally:
        _stop(fleet)


def test_an_agent_that_exits_is_reported_not_waited_for(tmp_path):
    agent, fleet = _agent(tmp_path)
    try:
        run = agent.ask("die", limit=600)  # EOF ends the wait long before the limit
        assert run.returncode == -1 and run.problem.startswith("agent exited during 'die'")
    finally:
        _stop(fleet)
