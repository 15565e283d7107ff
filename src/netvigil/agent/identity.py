"""The agent's identity at one observatory: enrolled once, then kept (DATA_DIR/identity.json, 0600).

The secret is the probe's only credential: it is written with mode 0600 in a directory of
mode 0700 and never printed. Pointed at another observatory, the agent enrols there anew.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import msgspec

from netvigil import __version__
from netvigil.errors import ConfigError, NetvigilError

FILE = "identity.json"


class Identity(msgspec.Struct):
    """What enrolment gave this agent at one observatory: its probe id and secret, kept so it enrols once."""

    server: str
    probe_id: str
    secret: str

    @property
    def token(self) -> str:
        """What goes after 'Bearer ' on every request."""
        return f"{self.probe_id}:{self.secret}"


class ServerUnreachable(NetvigilError):
    """The observatory could not be reached or answered 5xx/429 (worth trying again later)."""


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Atomically, mode 0600 from the start (never readable by others, not even for a moment)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(data_dir: Path, server: str) -> Identity | None:
    path = data_dir / FILE
    try:
        ident = msgspec.json.decode(path.read_bytes(), type=Identity)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.MsgspecError) as exc:
        raise ConfigError(f"the agent's identity file is unreadable or damaged ({exc})", where=str(path),
                          hint="move it away to enrol again") from None
    return ident if ident.server == server else None


def enrol(http: httpx.Client, server: str, data_dir: Path, invite: str | None = None) -> Identity:
    """POST /api/v1/probes/enrol and keep the answer; errors say whether to retry or fix something."""
    headers = {"Authorization": f"Bearer {invite}"} if invite else {}
    try:
        r = http.post(f"{server}/api/v1/probes/enrol", headers=headers,
                      json={"software_name": "netvigil-agent", "software_version": __version__})
    except httpx.HTTPError as exc:
        raise ServerUnreachable(f"cannot enrol: {type(exc).__name__}: {exc}", where=server) from None
    if r.status_code in (429,) or r.status_code >= 500:
        raise ServerUnreachable(f"cannot enrol now: HTTP {r.status_code}", where=server)
    if r.status_code in (401, 403):
        raise ConfigError(f"enrolment refused: {_detail(r)}", where=server,
                          hint="this observatory enrols by invitation: give --invite-file")
    if r.status_code != 200:
        raise ConfigError(f"enrolment failed: HTTP {r.status_code}: {_detail(r)}", where=server)
    try:
        answer = r.json()
        ident = Identity(server=server, probe_id=str(answer["probe_id"]), secret=str(answer["secret"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigError("the server's enrolment answer has no probe_id and secret (is it a netvigil "
                          "observatory?)", where=server) from None
    write_private(private_dir(data_dir) / FILE, msgspec.json.encode(ident))
    return ident


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail"))[:200]
    except (ValueError, AttributeError):
        return r.text[:200]
