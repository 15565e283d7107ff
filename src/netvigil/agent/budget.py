"""A daily byte budget for throughput tests: an agent on a mobile plan must not eat it.

The throughput test (SNI-keyed downloads and uploads against a helper) is the only part of
a round whose bytes add up; a round runs it only when the day's budget (UTC day) still holds
its upper bound (rounds x flows x bytes per flow, plus a quarter for handshakes and headers),
and that bound is what it is charged. The state is a small file, so a restart does not
reset the day.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from netvigil.agent.identity import write_private

DEFAULT_DAILY_BYTES = 25_000_000  # ~750 MB a month: a share of a small mobile plan


class _State(msgspec.Struct):
    day: str
    used: int


class ByteBudget:
    """The day's throughput bytes, kept in a file so a restarted agent does not spend them twice."""

    def __init__(self, path: Path, daily_bytes: int = DEFAULT_DAILY_BYTES, clock=time.time):
        self.path, self.daily, self.clock = Path(path), daily_bytes, clock

    def _today(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self.clock()))

    def used(self) -> int:
        try:
            state = msgspec.json.decode(self.path.read_bytes(), type=_State)
        except (OSError, msgspec.MsgspecError):
            return 0  # no file or a damaged one: a fresh day (the worst case is one day's budget twice)
        return state.used if state.day == self._today() else 0

    def left(self) -> int:
        return max(0, self.daily - self.used())

    def take(self, nbytes: int) -> bool:
        """Charge NBYTES if the day still holds them; False (nothing charged) otherwise."""
        used = self.used()
        if used + nbytes > self.daily:
            return False
        write_private(self.path, msgspec.json.encode(_State(self._today(), used + nbytes)))
        return True


def throughput_bound(services: int, rounds: int, flow_bytes: int) -> int:
    """Upper bound of one round's throughput bytes: per service, rounds x 4 flows (download and
    upload, target and control), plus a quarter for handshakes and headers."""
    return int(services * rounds * 4 * flow_bytes * 1.25)
