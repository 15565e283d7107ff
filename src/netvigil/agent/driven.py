"""Rounds on command (`netvigil agent --driven`): an orchestrator's clock instead of the cadence.

A lab (or any harness that runs many agents) keeps one agent process per vantage and tells it
when to run a round, instead of starting a process every round (a Python start costs more than
a round's check-in). One command a line on stdin, one JSON answer a line on stdout:

    round                       one round (check in, measure, submit), as --once does
    round 2022-03-01 09:00:00   the same, stamped with that scenario time (a lab's clock)
    flush                       only send what is queued

Answers: the round's RoundResult, or {"submitted", "queued", "rejected"} for a flush, or
{"error": "..."} (a bad command, an enrolment refused); the agent goes on reading. End of
input ends the agent, so a harness that goes away takes its agents with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from netvigil.agent.loop import describe
from netvigil.errors import NetvigilError
from netvigil.model.times import TIME_RE


def serve_commands(agent, lines: Iterable[str], write: Callable[[bytes], None]) -> int:
    """Answer each command of `lines` (see the module doc); returns how many rounds ran."""
    rounds = 0
    for line in lines:
        cmd, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        try:
            if cmd == "round" and (not arg or TIME_RE.match(arg)):
                agent.config.probe = msgspec.structs.replace(agent.config.probe, scenario_time=arg or None)
                result = agent.run_round()
                rounds += 1
                agent.say(describe(result, rounds))
                answer = msgspec.to_builtins(result)
            elif cmd == "flush" and not arg:
                res = agent.submit_queued()
                answer = {"submitted": res.submitted, "queued": res.queued, "rejected": res.rejected}
            elif not cmd:
                continue
            else:
                answer = {"error": f"unknown command {line.strip()[:80]!r} (round [YYYY-MM-DD HH:MM:SS] or flush)"}
        except NetvigilError as exc:
            answer = {"error": str(exc).splitlines()[0][:300]}
        write(msgspec.json.encode(answer) + b"\n")
    return rounds
