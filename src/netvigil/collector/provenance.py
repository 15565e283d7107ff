"""Where each accepted measurement came from: which probe, which source network, and whether
its claimed ASN/country agrees with the IP-to-ASN table.

One JSON line per measurement in DATA_DIR/collector/provenance.jsonl, appended (fsync) right
after the measurement itself is durable, keyed by its uid. The source network is the /24 or
/64, never the address (docs/security.md). A measurement with no line here (a crash between
the two writes, or data from before this file existed) counts as one anonymous voice.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import msgspec

MAX_LINE = 4096  # a longer line in the file is damage: skipped when read


class Provenance(msgspec.Struct):
    uid: str
    network: str  # /24 or /64 of the submitting address, "unknown" when there was none
    probe_id: str | None = None  # None: an anonymous (legacy) client, or a trusted-token client
    claim: str = "unknown"  # probes.ClaimCheck: match | mismatch | unknown
    located: str = ""  # what the IP-to-ASN table said (e.g. "AS3320/DE"), or why it said nothing


_decoder = msgspec.json.Decoder(Provenance)
_encoder = msgspec.json.Encoder()


class ProvenanceLog:
    def __init__(self, path: Path, fsync: bool = True):
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()

    def append(self, rows: list[Provenance]) -> None:
        if not rows:
            return
        data = b"".join(_encoder.encode(r) + b"\n" for r in rows)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                if self.fsync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)

    def read(self) -> dict[str, Provenance]:
        """uid -> its provenance (the first line for a uid wins: a resubmission does not relabel it)."""
        out: dict[str, Provenance] = {}
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return out
        with fh:
            for line in fh:
                if len(line) > MAX_LINE or not line.strip():
                    continue
                try:
                    row = _decoder.decode(line)
                except msgspec.MsgspecError:
                    continue  # a torn last line from a crash
                out.setdefault(row.uid, row)
        return out
