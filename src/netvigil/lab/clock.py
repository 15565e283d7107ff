"""The scenario clock: round r happens at scenario time start + r * cadence. With a speed
factor the runner waits so one scenario minute lasts 60/speed wall seconds; speed 0 runs the
rounds back to back (the probes' own duration sets the pace). The probes write the scenario
time as measurement_start_time and the wall clock in annotations.wallclock_start.
"""

from __future__ import annotations

import time
from datetime import datetime

from netvigil.lab.scenario import TIME_FMT, Scenario


class ScenarioClock:
    """Maps round numbers to scenario times and, with a speed, waits for each (module docstring)."""

    def __init__(self, scenario: Scenario, speed: float = 0.0, rounds: int | None = None):
        self.scenario = scenario
        self.speed = speed
        self.rounds = min(rounds, scenario.rounds) if rounds else scenario.rounds
        self.wall0 = time.monotonic()

    def time_of(self, r: int) -> datetime:
        return self.scenario.round_time(r)

    def label(self, r: int) -> str:
        return self.time_of(r).strftime(TIME_FMT)

    def wait_for(self, r: int, sleep=time.sleep) -> None:
        if self.speed <= 0:
            return
        due = self.wall0 + (self.time_of(r) - self.scenario.start).total_seconds() / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            sleep(delay)
