"""Probe identity: enrolled probes, their secrets, trust, and where a submission came from.

A probe enrols once (POST /api/v1/probes/enrol) and gets an id and a secret; it then sends
`Authorization: Bearer ID:SECRET` with every request. Only a SHA-256 of the secret is kept
(the secret is 32 random bytes, so a slow hash would add nothing), in
DATA_DIR/collector/probes.jsonl, mode 0600, append-only.

Enrolment is open, or needs an operator's invite token (`netvigil serve --invite-file`).
A probe is trusted (its word alone is enough to publish, analysis/incidents/quorum.py) when it enrolled
with the operator's second, trusted invite token (`--trusted-invite-file`: the operator's own
probes, e.g. the lab's agents), or when an operator marks it so (admin endpoint).

`source_network()` is what the observatory keeps of a submitting address: its /24 (IPv4)
or /64 (IPv6), never the address. `check_claim()` compares a claimed ASN/country with what
the IP-to-ASN table (targets/geo.py, the probe's own Locator) says of the source address.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import threading
import time
from pathlib import Path

import msgspec

from netvigil.collector.validation import Rejected
from netvigil.targets.geo import Locator, default_locator

PROBE_ID_RE = re.compile(r"nvp_[0-9a-f]{24}")
MAX_PROBES = 1_000_000  # a registry file past this is refused (hostile or broken)
MAX_LINE = 4096  # one probe's line is ~250 bytes


class Probe(msgspec.Struct):
    probe_id: str
    secret_sha256: str
    enrolled: str  # UTC time of enrolment
    trusted: bool = False
    software: str = ""


class Enrolment(msgspec.Struct):
    """What POST /api/v1/probes/enrol answers: the secret is shown this once."""

    probe_id: str
    secret: str
    authorization: str  # the header value to send: "Bearer ID:SECRET"


class ClaimCheck(str, enum.Enum):
    """The claimed ASN/country against the submitting address's entry in the IP-to-ASN table."""

    MATCH = "match"
    MISMATCH = "mismatch"
    UNKNOWN = "unknown"  # loopback/private source, or the table does not know the address


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ProbeRegistry:
    """Enrolled probes of one observatory (thread-safe; every change is on disk before it is answered).

    The file is append-only JSON lines, one per enrolment or change of trust (the last line of an
    id wins): an enrolment costs one small write and one fsync, however many probes there are.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.probes: dict[str, Probe] = self._load()

    def _load(self) -> dict[str, Probe]:
        from netvigil.errors import StoreError

        probes: dict[str, Probe] = {}
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return probes
        except OSError as exc:
            raise StoreError(f"cannot read the probe registry: {exc.strerror}", where=str(self.path)) from None
        with fh:
            for n in range(1, MAX_PROBES + 2):
                line = fh.readline(MAX_LINE + 1)  # bounded: a hostile file cannot make us hold a huge line
                if not line:
                    break
                if len(line) <= MAX_LINE and not line.endswith(b"\n"):
                    break  # a torn last line: that enrolment was never answered
                if not line.strip():
                    continue
                try:
                    if len(line) > MAX_LINE:
                        raise msgspec.DecodeError(f"line longer than {MAX_LINE} bytes")
                    probe = _probe.decode(line)
                except msgspec.MsgspecError as exc:
                    raise StoreError(f"the probe registry is damaged at line {n} ({exc})", where=str(self.path),
                                     hint="restore it from a backup; enrolled probes cannot submit until then") from None
                probes[probe.probe_id] = probe
                if len(probes) > MAX_PROBES:
                    raise StoreError(f"more than {MAX_PROBES} probes in the registry", where=str(self.path))
        return probes

    def _append(self, probe: Probe) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, msgspec.json.encode(probe) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def enrol(self, software: str = "", trusted: bool = False) -> Enrolment:
        probe_id = "nvp_" + secrets.token_hex(12)
        secret = secrets.token_urlsafe(32)
        probe = Probe(probe_id, _digest(secret), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      trusted=trusted, software=software[:64])
        with self._lock:
            self._append(probe)
            self.probes[probe_id] = probe
        return Enrolment(probe_id, secret, f"Bearer {probe_id}:{secret}")

    def verify(self, credential: str) -> Probe | None:
        """The probe of an `ID:SECRET` credential; None when it is not of that shape (another kind
        of token); a Rejected 401 when it is, but wrong (unknown id or bad secret)."""
        probe_id, sep, secret = credential.partition(":")
        if not sep or not PROBE_ID_RE.fullmatch(probe_id):
            return None
        probe = self.probes.get(probe_id)
        if probe is None or not hmac.compare_digest(probe.secret_sha256, _digest(secret)):
            raise Rejected(f"probe {probe_id}: unknown probe or wrong secret (enrol again with "
                           "POST /api/v1/probes/enrol, or `netvigil agent` with a fresh --data-dir)", 401)
        return probe

    def set_trusted(self, probe_id: str, trusted: bool) -> Probe:
        with self._lock:
            probe = self.probes.get(probe_id)
            if probe is None:
                raise Rejected(f"probe {probe_id[:40]!r} is not enrolled", 404)
            changed = msgspec.structs.replace(probe, trusted=trusted)
            self._append(changed)
            self.probes[probe_id] = changed
        return changed

    def trusted_ids(self) -> frozenset[str]:
        return frozenset(p.probe_id for p in self.probes.values() if p.trusted)


_probe = msgspec.json.Decoder(Probe)


def read_invite(path: Path | None, env: str = "NETVIGIL_INVITE_TOKEN") -> str | None:
    """The operator's invite token from a file (first line), or the ENV variable; None: none given
    (for the plain invite: open enrolment). The trusted invite reads NETVIGIL_TRUSTED_INVITE_TOKEN."""
    from netvigil.errors import ConfigError

    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError):
            raise ConfigError("cannot read an invite token (one line)", where=str(path)) from None
    else:
        token = os.environ.get(env, "").strip()
    if token and len(token) < 16:
        raise ConfigError("the invite token is shorter than 16 characters", where=str(path or env))
    return token or None


@functools.lru_cache(maxsize=16384)  # (every request of a client asks again: ~30 µs of ipaddress each)
def source_network(address: str | None) -> str:
    """The /24 (IPv4) or /64 (IPv6) of ADDRESS: what is kept of where a submission came from."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


@functools.lru_cache(maxsize=16384)
def is_local(address: str | None) -> bool:
    """Loopback, private, link-local: the IP-to-ASN table cannot say where such a client is."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return True
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def check_claim(address: str | None, probe_asn: str, probe_cc: str,
                locator: Locator | None = None) -> tuple[ClaimCheck, str]:
    """(result, what the table says) of a claimed ASN and country from ADDRESS."""
    if is_local(address):
        return ClaimCheck.UNKNOWN, "local address"
    where = (locator or default_locator()).locate(address)  # type: ignore[arg-type]
    known_asn, known_cc = where.asn != 0, where.cc != "ZZ"
    if not known_asn and not known_cc:
        return ClaimCheck.UNKNOWN, "not in the IP-to-ASN table"
    said = f"{where.probe_asn if known_asn else '?'}/{where.cc if known_cc else '?'}"
    if (known_asn and where.probe_asn != probe_asn) or (known_cc and where.cc != probe_cc):
        return ClaimCheck.MISMATCH, said
    return ClaimCheck.MATCH, said

