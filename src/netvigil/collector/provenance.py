"""Where each accepted measurement came from: which probe, which source network, and whether
its claimed ASN/country agrees with the IP-to-ASN table.

One JSON line per measurement in DATA_DIR/collector/provenance.jsonl, appended just before the
measurement goes to the log (so the analysis, which reads the log, finds it), keyed by its uid. The source network is the /24 or /64, never
the address (docs/security.md). The write is not fsynced (a second fsync per request would
halve what the collector's group commit buys): a process crash loses nothing written, a
machine crash may lose the last lines. A measurement with no line here (that, or data from
before this file existed) counts as one anonymous voice: losing a line never adds a voice.
The analysis counts these voices before it publishes anything (analysis/incidents/quorum.py).
The record itself (`Provenance`) is model/provenance.py's, which both sides share.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import msgspec

from netvigil.model.provenance import MAX_LINE, Provenance

_decoder = msgspec.json.Decoder(Provenance)
_encoder = msgspec.json.Encoder()


class ProvenanceLog:
    """DATA_DIR/collector/provenance.jsonl: appended (not fsynced, module docstring) and read
    back by uid, by the collector and by the analysis' quorum gate."""

    def __init__(self, path: Path, fsync: bool = False):
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

    def rows(self, uid: str | None = None):
        """Each row in file order (only UID's when given); damaged or torn lines are passed over."""
        needle = b'"' + uid.encode() + b'"' if uid is not None else b""
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return
        with fh:
            for line in fh:
                if len(line) > MAX_LINE or not line.strip() or needle not in line:
                    continue
                try:
                    row = _decoder.decode(line)
                except msgspec.MsgspecError:
                    continue  # a torn last line from a crash
                if uid is None or row.uid == uid:
                    yield row

    def find(self, uid: str) -> Provenance | None:
        """UID's provenance: the first line wins (a resubmission from elsewhere does not relabel it)."""
        return next(self.rows(uid), None)

    def read(self) -> dict[str, Provenance]:
        """uid -> its provenance, for every uid (the first line of each wins)."""
        out: dict[str, Provenance] = {}
        for row in self.rows():
            out.setdefault(row.uid, row)
        return out
