"""What an agent and the observatory agree on at check-in (POST /api/v1/check-in).

Both sides decode these: the collector (collector/fleet.py answers) and the agent
(agent/checkin.py asks), so the protocol lives here, below both, as the helper's does in
helper_protocol.py; neither side imports the other.
"""

from __future__ import annotations

import msgspec


class CheckIn(msgspec.Struct, forbid_unknown_fields=False):
    """POST /api/v1/check-in body (OONI's check-in fields we use; all optional)."""

    software_name: str = ""
    software_version: str = ""
    probe_asn: str = "AS0"
    probe_cc: str = "ZZ"


class CheckInAnswer(msgspec.Struct):
    """What to measure, how often and with which helpers, and where the observatory locates
    the agent; the agent keeps the last one for when the observatory is down."""

    v: int
    probe_id: str | None
    catalogue_version: str
    services: list[str]
    cadence_seconds: float
    jitter: float
    helpers: list[str]
    probe_asn: str  # where the observatory locates the check-in's source address (AS0: unknown)
    probe_cc: str
    probe_network_name: str
    located: bool
    utc_time: str
