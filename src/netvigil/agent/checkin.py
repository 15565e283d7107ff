"""Check-in (as OONI probes check in): what to measure, how often, the helpers, where we are.

The last answer is kept (DATA_DIR/checkin.json) so an agent whose observatory is down goes on
measuring what it was told and queues the results.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec

from netvigil import __version__
from netvigil.agent.identity import Identity, ServerUnreachable, write_private
from netvigil.model.checkin import CheckInAnswer
from netvigil.errors import ConfigError, NetvigilError

FILE = "checkin.json"


class Unenrolled(NetvigilError):
    """The observatory refused our credentials (its registry was reset, or the probe removed)."""


def check_in(http: httpx.Client, ident: Identity) -> CheckInAnswer:
    try:
        r = http.post(f"{ident.server}/api/v1/check-in", headers={"Authorization": f"Bearer {ident.token}"},
                      json={"software_name": "netvigil-agent", "software_version": __version__})
    except httpx.HTTPError as exc:
        raise ServerUnreachable(f"check-in failed: {type(exc).__name__}: {exc}", where=ident.server) from None
    if r.status_code == 429 or r.status_code >= 500:
        raise ServerUnreachable(f"check-in failed: HTTP {r.status_code}", where=ident.server)
    if r.status_code == 401:
        raise Unenrolled(f"the observatory does not know probe {ident.probe_id} any more", where=ident.server)
    try:
        r.raise_for_status()
        return msgspec.json.decode(r.content, type=CheckInAnswer)
    except (httpx.HTTPStatusError, msgspec.MsgspecError) as exc:
        raise ConfigError(f"unexpected check-in answer: {exc}", where=ident.server) from None


def remember(data_dir: Path, answer: CheckInAnswer) -> None:
    write_private(data_dir / FILE, msgspec.json.encode(answer))


def last(data_dir: Path) -> CheckInAnswer | None:
    try:
        return msgspec.json.decode((data_dir / FILE).read_bytes(), type=CheckInAnswer)
    except (OSError, msgspec.MsgspecError):
        return None
